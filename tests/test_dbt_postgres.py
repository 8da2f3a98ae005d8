"""The whole dbt project built on PostgreSQL, the engine closest to Redshift's SQL that runs here."""

from __future__ import annotations

import random

import psycopg2
import pytest

from loaders import pipeline
from loaders.dashboard import QUERIES, fetch
from loaders.sources import open_source
from loaders.status import collect
from olist_demo.shop_simulator import simulate_hour

from .helpers import extract_and_load, fill_source, quiet
from .test_postgres_load import pg_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


def pg_rows(s, sql):
    with psycopg2.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, dbname=s.pg_database) as conn:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()


def test_dbt_build_on_postgres_historical_then_incremental(pg_settings, olist_csv):  # noqa: F811
    s = pg_settings
    fill_source(s, olist_csv)
    extract_and_load(s)
    report = pipeline.build(s, quiet())
    assert report.success and not report.failures
    assert any(name.startswith("unit_test.") for name, _, _ in report.results)
    with open_source(s.source_url) as db:
        simulate_hour(db, random.Random(5), orders_per_hour=6, progress_per_hour=20)
        orders, items = db.execute("SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_items)")[0]
    extract_and_load(s)
    pipeline.build(s, quiet())
    assert pg_rows(s, "SELECT count(*) FROM marts.fact_orders") == [(orders,)]
    assert pg_rows(s, "SELECT count(*) FROM marts.fact_order_items") == [(items,)]
    assert pg_rows(s, "SELECT count(*) FROM bi.bi_monthly_revenue")[0][0] > 10
    # the run history, the status and the dashboard: the same SQL as on DuckDB
    history = pg_rows(s, "SELECT stage, status, count(*) FROM raw._run_history GROUP BY stage, status ORDER BY 1, 2")
    assert ("build", "succeeded", 4) in history and ("load", "succeeded", 18) in history, history
    assert {stage for stage, _, _ in history} == {"build", "extract", "load"}
    status = collect(s)
    assert status.exit_status == 0 and {t.table: t.freshness for t in status.tables}["orders"] == "pass"
    data = fetch(s)
    assert data.missing == [] and set(data.rows) == set(QUERIES)
    assert data.rows["monthly_revenue"] and data.rows["lag_by_table"] and data.rows["rows_per_run"]
    incremental = pg_rows(s, "SELECT * FROM marts.fact_orders ORDER BY order_id")
    pipeline.build(s, quiet(), ["--full-refresh", "--select", "fact_orders"], check_freshness=False)
    assert pg_rows(s, "SELECT * FROM marts.fact_orders ORDER BY order_id") == incremental
