"""The first dbt build on top of the raw tables: staging views, latest version per key."""

from __future__ import annotations

import pytest

from loaders import pipeline
from loaders.build.dbt_runner import DbtError
from loaders.sources import open_source

from .helpers import extract_and_load, fill_source, quiet, warehouse_rows

pytestmark = pytest.mark.slow


def test_changed_row_is_in_staging_once_in_its_latest_version(settings, olist_csv):
    fill_source(settings, olist_csv)
    extract_and_load(settings)
    report = pipeline.build(settings, quiet())
    assert report.success and not report.failures
    staged = warehouse_rows(settings, "SELECT count(*), count(DISTINCT order_id) FROM staging.stg_olist__orders")
    with open_source(settings.source_url) as db:
        orders = db.execute("SELECT count(*) FROM orders")[0][0]
        order_id = db.execute("SELECT order_id FROM orders WHERE order_status = 'shipped' ORDER BY order_id LIMIT 1")[
            0
        ][0]
    assert staged == [(orders, orders)]

    with open_source(settings.source_url) as db:
        db.execute(
            "UPDATE orders SET order_status = 'delivered', order_delivered_customer_date = '2018-09-01 12:00:00' "
            "WHERE order_id = ?",
            (order_id,),
        )
    extract_and_load(settings)
    pipeline.build(settings, quiet(), ["--select", "stg_olist__orders"])
    rows = warehouse_rows(
        settings,
        f"SELECT order_status, delivered_to_customer_at FROM staging.stg_olist__orders WHERE order_id = '{order_id}'",
    )
    assert len(rows) == 1 and rows[0][0] == "delivered" and str(rows[0][1]) == "2018-09-01 12:00:00"
    assert warehouse_rows(settings, f"SELECT count(*) FROM raw.orders WHERE order_id = '{order_id}'") == [(2,)]


def test_key_tests_catch_a_duplicate(settings, olist_csv):
    fill_source(settings, olist_csv, ["sellers"])
    extract_and_load(settings, tables=["sellers"])
    import duckdb

    with duckdb.connect(settings.duckdb_path) as con:  # a second, different row for an existing key in one batch
        con.execute("""INSERT INTO raw.sellers SELECT seller_id, seller_zip_code_prefix, 'x', seller_state,
                       updated_at, _batch_id, _loaded_at, _op, _row_hash, _change_seq FROM raw.sellers LIMIT 1""")
    # latest_version keeps one row per key whatever the raw table holds, so staging stays unique ...
    pipeline.build(settings, quiet(), ["--select", "stg_olist__sellers"], check_freshness=False)
    # ... and the not_null gate on the raw keys fails loudly when the data breaks it.
    with duckdb.connect(settings.duckdb_path) as con:
        con.execute(
            "INSERT INTO raw.sellers VALUES (NULL, '01037', 'x', 'SP', now(), '20260101T000000000000Z-000000', now(), "
            "'r', 'f' || repeat('0', 31), 0)"
        )
    with pytest.raises(DbtError, match="source_not_null_olist_sellers_seller_id"):
        pipeline.build(
            settings, quiet(), ["--select", "source:olist.sellers", "stg_olist__sellers"], check_freshness=False
        )
