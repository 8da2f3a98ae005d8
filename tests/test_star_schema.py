"""The star schema: incremental facts equal a full refresh, and quality gates stop bad data."""

from __future__ import annotations

import random

import duckdb
import pytest

from loaders import pipeline
from loaders.build.dbt_runner import DbtError
from loaders.sources import open_source
from olist_demo.shop_simulator import simulate_hour

from .helpers import extract_and_load, fill_source, quiet, warehouse_rows

pytestmark = pytest.mark.slow
NO_LOOKBACK = ["--vars", "{lookback_hours: 0}"]  # only what changed since the last build
FACTS = ["marts.fact_orders", "marts.fact_order_items"]
BI = [
    "bi.bi_monthly_revenue",
    "bi.bi_sales_by_category_year",
    "bi.bi_delivery_performance_by_state",
    "bi.bi_seller_scorecard",
]


def snapshot(settings, relations: list[str]) -> dict[str, list[tuple]]:
    with duckdb.connect(settings.duckdb_path) as con:
        return {r: con.execute(f"SELECT * FROM {r} ORDER BY ALL").fetchall() for r in relations}


def build(settings, *args: str):
    return pipeline.build(settings, quiet(), [*args], check_freshness=False)


def test_incremental_facts_equal_a_full_refresh(settings, olist_csv):
    s = settings
    fill_source(s, olist_csv)
    extract_and_load(s)
    build(s, *NO_LOOKBACK)
    rng = random.Random(3)
    with open_source(s.source_url) as db:
        changed_order = db.execute(
            "SELECT order_id FROM order_items WHERE order_item_id = 1 ORDER BY order_id LIMIT 1"
        )[0][0]
    for hour in range(4):
        with open_source(s.source_url) as db:
            simulate_hour(db, rng, orders_per_hour=8, progress_per_hour=25)
            if hour == 1:  # an order whose items change: a price correction and an added item
                db.execute(
                    "UPDATE order_items SET price = price + 1.5 WHERE order_id = ? AND order_item_id = 1",
                    (changed_order,),
                )
                db.execute(
                    "INSERT INTO order_items (order_id, order_item_id, product_id, seller_id, shipping_limit_date, "
                    "price, freight_value) SELECT order_id, 99, product_id, seller_id, shipping_limit_date, '10.00', "
                    "'2.00' FROM order_items WHERE order_id = ? AND order_item_id = 1",
                    (changed_order,),
                )
        if hour == 2:
            # A batch that arrives late: items and reviews are extracted now but loaded only
            # after the next build.
            pipeline.extract(s, quiet(), "auto")
            pipeline.load(s, quiet(), ["customers", "orders", "order_payments"])
            build(s, *NO_LOOKBACK)
            assert warehouse_rows(s, "SELECT count(*) FROM marts.fact_order_items WHERE order_item_id = 99") == [(1,)]
            continue
        extract_and_load(s)
        build(s, *NO_LOOKBACK)
    fact = warehouse_rows(
        s, f"SELECT count(*), sum(price) FROM marts.fact_order_items WHERE order_id = '{changed_order}'"
    )[0]
    with open_source(s.source_url) as db:
        source = db.execute(
            "SELECT count(*), sum(CAST(price AS REAL)) FROM order_items WHERE order_id = ?", (changed_order,)
        )[0]
    assert fact[0] == source[0] and float(fact[1]) == pytest.approx(source[1])  # the changed items are in
    incremental = snapshot(s, FACTS)
    assert len(incremental["marts.fact_orders"]) > 0

    build(s, "--full-refresh")
    assert snapshot(s, FACTS) == incremental

    # No new batch: an incremental build changes nothing.
    build(s)
    assert snapshot(s, FACTS) == incremental


@pytest.fixture
def built(settings, olist_csv):
    fill_source(settings, olist_csv)
    extract_and_load(settings)
    build(settings)
    return settings


def _inject_and_check(settings, gate: str) -> None:
    before = snapshot(settings, FACTS + BI)
    extract_and_load(settings)
    with pytest.raises(DbtError, match=gate) as info:
        build(settings)
    assert "failing rows: select * from" in str(info.value)
    assert snapshot(settings, FACTS + BI) == before  # the BI views keep their last good state


def test_unknown_status_is_stopped_by_accepted_values(built):
    with open_source(built.source_url) as db:
        db.execute(
            "UPDATE orders SET order_status = 'lost_in_transit' WHERE order_id = (SELECT min(order_id) FROM orders)"
        )
        db.execute(
            "INSERT INTO orders (order_id, customer_id, order_status, order_purchase_timestamp, "
            "order_estimated_delivery_date) VALUES (?, ?, 'created', '2018-10-20 10:00:00', '2018-11-01 00:00:00')",
            ("a" * 32, "b" * 32),
        )
    _inject_and_check(built, "accepted_values_stg_olist__orders_order_status")


def test_payment_for_an_unknown_order_is_stopped_by_relationships(built):
    with open_source(built.source_url) as db:
        db.execute(
            "INSERT INTO order_payments (order_id, payment_sequential, payment_type, payment_installments, "
            "payment_value) VALUES (?, 1, 'boleto', 1, '10.00')",
            ("9" * 32,),
        )
        db.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = (SELECT min(order_id) FROM orders)")
    _inject_and_check(built, "relationships_stg_olist__order_payments_order_id")


def test_duplicated_order_in_one_batch_is_stopped_at_the_source(built):
    with open_source(built.source_url) as db:
        db.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = (SELECT min(order_id) FROM orders)")
    pipeline.extract(built, quiet(), "auto")
    pipeline.load(built, quiet())
    with duckdb.connect(built.duckdb_path) as con:  # what a broken extract would have written
        con.execute("""INSERT INTO raw.orders SELECT * REPLACE ('shipped' AS order_status) FROM raw.orders
                       WHERE _batch_id = (SELECT max(_batch_id) FROM raw.orders) LIMIT 1""")
    before = snapshot(built, FACTS + BI)
    with pytest.raises(DbtError, match="source_unique_combination_olist_orders"):
        build(built)
    assert snapshot(built, FACTS + BI) == before
