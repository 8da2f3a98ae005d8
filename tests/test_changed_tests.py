"""Builds cost the change: an hourly build tests the rows of its run; the whole project is tested
over whole tables on the daily cadence; a bad new row still stops what is downstream."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from loaders import pipeline
from loaders.build import scope as build_scope
from loaders.build.dbt_runner import DbtError
from loaders.sources import open_source

from .helpers import extract_and_load, fill_source, quiet, warehouse_rows

pytestmark = pytest.mark.slow
NO_LOOKBACK = ["--vars", "{lookback_hours: 0}"]
SOURCE_GATE = "source_unique_combination_olist_orders_order_id___batch_id"


def _compiled(settings, name: str) -> str:
    [path] = Path(settings.data_dir, "dbt", "target", "compiled").rglob(f"{name}*.sql")
    return path.read_text()


def _touch_an_order(settings, status: str = "canceled") -> None:
    with open_source(settings.source_url) as db:
        db.execute(
            "UPDATE orders SET order_status = ? WHERE order_id = (SELECT max(order_id) FROM orders "
            "WHERE order_status = 'delivered')",
            (status,),
        )


def test_hourly_tests_see_this_runs_rows_and_the_daily_build_sees_all(settings, olist_csv):
    s = settings
    fill_source(s, olist_csv)
    extract_and_load(s)
    pipeline.build(s, quiet(), NO_LOOKBACK, check_freshness=False)  # the first build: whole, every row
    assert "_build_log" not in _compiled(s, SOURCE_GATE)

    # A broken row that an earlier load left in raw (a key twice in one old batch): the hourly
    # build does not read old rows, so it does not see it ...
    with duckdb.connect(s.duckdb_path) as con:
        con.execute(
            "INSERT INTO raw.orders SELECT * FROM raw.orders WHERE order_id = (SELECT min(order_id) FROM raw.orders)"
        )
    _touch_an_order(s)
    extract_and_load(s, "auto", ["orders"])
    hourly = pipeline.build(s, quiet(), NO_LOOKBACK, check_freshness=False)
    assert any(SOURCE_GATE in name for name, _, _ in hourly.results)  # the gate ran, on new rows
    compiled = _compiled(s, SOURCE_GATE)
    assert '"_loaded_at" >' in compiled and "_build_log" in compiled
    assert '"loaded_at" >' in _compiled(s, "not_null_stg_olist__orders_order_status")

    # ... the daily whole build does (DWH_FULL_TESTS_HOURS=0: due now), and stops downstream.
    facts_before = warehouse_rows(s, "SELECT * FROM marts.fact_orders ORDER BY ALL")
    _touch_an_order(s, "shipped")
    extract_and_load(s, "auto", ["orders"])
    with pytest.raises(DbtError, match=SOURCE_GATE):
        pipeline.build(s.with_(full_tests_hours=0), quiet(), NO_LOOKBACK, check_freshness=False)
    assert "_build_log" not in _compiled(s, SOURCE_GATE)
    assert warehouse_rows(s, "SELECT * FROM marts.fact_orders ORDER BY ALL") == facts_before


def test_a_bad_new_row_still_stops_its_downstream_models_hourly(settings, olist_csv):
    s = settings
    fill_source(s, olist_csv)
    extract_and_load(s)
    pipeline.build(s, quiet(), NO_LOOKBACK, check_freshness=False)
    before = warehouse_rows(s, "SELECT * FROM marts.fact_orders ORDER BY ALL")
    _touch_an_order(s, "lost_in_transit")
    extract_and_load(s, "auto", ["orders"])
    with pytest.raises(DbtError, match="accepted_values_stg_olist__orders_order_status"):
        pipeline.build(s, quiet(), NO_LOOKBACK, check_freshness=False)
    assert warehouse_rows(s, "SELECT * FROM marts.fact_orders ORDER BY ALL") == before


def test_the_test_scope_var_merges_into_the_users_vars():
    assert build_scope.with_vars([], {"test_scope": "all"}) == ["--vars", '{"test_scope": "all"}']
    merged = build_scope.with_vars(["--vars", "{lookback_hours: 0}", "-x"], {"test_scope": "all"})
    assert merged == ["--vars", '{"lookback_hours": 0, "test_scope": "all"}', "-x"]
    assert build_scope.with_vars(["--vars={a: 1}"], {"b": 2}) == ['--vars={"a": 1, "b": 2}']
