"""The whole dbt project built on PostgreSQL, the engine closest to Redshift's SQL that runs here."""

from __future__ import annotations

import random

import psycopg2
import pytest

from loaders import pipeline
from loaders.build.dbt_runner import DbtError
from loaders.config import PROJECT_DIR
from loaders.dashboard import QUERIES, fetch
from loaders.sources import open_source
from loaders.status import collect
from olist_demo.shop_simulator import simulate_hour

from .helpers import extract_and_load, fill_source, quiet

pytestmark = pytest.mark.slow


def pg_rows(s, sql):
    with psycopg2.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, dbname=s.pg_database) as conn:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()


def pg_execute(s, *statements: str) -> None:
    with psycopg2.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, dbname=s.pg_database) as conn:
        cur = conn.cursor()
        for sql in statements:
            cur.execute(sql)


def test_dbt_build_on_postgres_historical_then_incremental(pg_settings, olist_csv):
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


BI_MODELS = sorted(p.stem for p in (PROJECT_DIR / "models" / "bi").glob("bi_*.sql"))


def test_a_failed_build_leaves_every_bi_relation_queryable(pg_settings, olist_csv):
    """A gate fails in a model upstream of BI views while dim_date, a table rebuilt on every run (its
    swap ends with DROP ... CASCADE), succeeds: no BI relation goes missing, each keeps its last state."""
    s = pg_settings
    fill_source(s, olist_csv)
    extract_and_load(s)
    pipeline.build(s, quiet(), check_freshness=False)
    before = {name: pg_rows(s, f"SELECT * FROM bi.{name} ORDER BY 1, 2") for name in BI_MODELS}
    assert len(BI_MODELS) >= 6 and all(rows for name, rows in before.items() if "funnel" not in name)
    # a fact row whose customer does not exist: the relationships gate on fact_orders fails
    pg_execute(
        s,
        "CREATE TEMP TABLE planted AS SELECT * FROM marts.fact_orders LIMIT 1",
        "UPDATE planted SET order_id = repeat('z', 32), customer_id = repeat('y', 32)",
        "INSERT INTO marts.fact_orders SELECT * FROM planted",
    )
    with pytest.raises(DbtError, match="relationships_fact_orders_customer_id") as info:
        pipeline.build(s, quiet(), check_freshness=False)
    assert "bi_" not in str(info.value)  # the BI models were skipped, not failed
    history = pg_rows(s, "SELECT count(*) FROM raw._run_history WHERE stage = 'build' AND status = 'failed'")
    assert history == [(1,)]
    after = {name: pg_rows(s, f"SELECT * FROM bi.{name} ORDER BY 1, 2") for name in BI_MODELS}
    assert after == before
