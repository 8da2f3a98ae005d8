"""The change simulator gives the incremental pipeline real work, on SQLite and MariaDB."""

from __future__ import annotations

import random

import pytest

from loaders.sources import open_source
from olist_demo.shop_simulator import simulate_hour

from .helpers import extract_and_load, fill_source, warehouse_rows

TABLES = ["customers", "orders", "order_items", "order_payments", "order_reviews", "products", "sellers"]


@pytest.fixture(params=["sqlite", "mysql"])
def source_settings(request, settings):
    if request.param == "mysql":
        return settings.with_(source_url=request.getfixturevalue("mysql_url"))
    return settings


def test_an_hour_of_changes_reaches_the_raw_tables(source_settings, olist_csv):
    s = source_settings.with_(lookback_seconds=0)
    fill_source(s, olist_csv, TABLES)
    historical, _ = extract_and_load(s, "historical", TABLES)
    historical_upper = historical[0].upper
    with open_source(s.source_url) as db:
        report = simulate_hour(db, random.Random(1), orders_per_hour=12, progress_per_hour=30)
        q = db.quote
        new_orders = db.execute(
            f"SELECT {q('order_id')}, {q('order_status')} FROM {q('orders')} "
            f"WHERE {q('order_purchase_timestamp')} >= '{report.hour_start:%Y-%m-%d %H:%M:%S}'"
        )
        orphan_items = db.execute(
            f"SELECT count(*) FROM {q('order_items')} i "
            f"LEFT JOIN {q('orders')} o ON o.{q('order_id')} = i.{q('order_id')} "
            f"WHERE o.{q('order_id')} IS NULL"
        )[0][0]
    assert report.new_orders == len(new_orders) == 12 and orphan_items == 0
    assert report.new_items >= 12 and report.new_payments == 12
    assert report.approved + report.shipped + report.delivered + report.canceled > 0
    assert report.new_reviews == report.delivered

    with open_source(s.source_url) as db:  # an order can move twice in one hour: count distinct rows
        changed_orders = db.execute(
            f"SELECT count(*) FROM {db.quote('orders')} WHERE {db.quote('updated_at')} >= "
            f"{db.timestamp_literal(historical_upper)}"
        )[0][0]
    assert (
        report.new_orders
        < changed_orders
        <= report.new_orders + report.approved + report.shipped + report.delivered + report.canceled
    )
    batches, loads = extract_and_load(s, "current", TABLES)
    by_table = {b.table: b.rows for b in batches}
    # With no lookback the incremental batches hold exactly the changed rows.
    assert by_table["orders"] == changed_orders
    assert by_table["order_items"] == report.new_items
    assert by_table["order_reviews"] == report.new_reviews
    assert by_table["products"] == 0 and by_table["sellers"] == 0
    delivered = warehouse_rows(
        s,
        "SELECT count(*) FROM raw.orders WHERE order_status = 'delivered' "
        "AND order_delivered_customer_date IS NOT NULL AND _batch_id = "
        f"'{next(b.batch_id for b in batches if b.table == 'orders')}'",
    )[0][0]
    assert delivered == report.delivered
