"""`dwh build` runs only what is downstream of new data (loaders/build/scope.py), on DuckDB."""

from __future__ import annotations

import pytest

from loaders import pipeline
from loaders.build import scope as build_scope
from loaders.build.dbt_runner import DbtError
from loaders.sources import open_source
from loaders.store import ObjectStore
from loaders.warehouses import open_warehouse
from olist_demo.funnel_generator import generate_funnel

from .helpers import extract_and_load, fill_source, quiet, warehouse_rows

pytestmark = pytest.mark.slow
NO_LOOKBACK = ["--vars", "{lookback_hours: 0}"]


def models(report) -> set[str]:
    return {name.split(".")[-1] for name, _, _ in report.results if name.startswith("model.")}


def builds(settings) -> list[tuple]:
    with open_warehouse(settings, ObjectStore(settings.store_url, settings)) as wh:
        return wh.execute(f"SELECT started_at, selection FROM {wh.raw_name(build_scope.BUILD_LOG)} ORDER BY 1")


def test_a_build_runs_what_is_downstream_of_new_batches_only(settings, olist_csv, tmp_path):
    s = settings
    fill_source(s, olist_csv)
    generate_funnel(tmp_path / "funnel", olist_csv, rows_per_file=300, years=(2017,), seed=4)
    pipeline.funnel_land(s, quiet(), [tmp_path / "funnel" / "2017_funnel.csv"])
    pipeline.funnel_convert(s, quiet())
    extract_and_load(s)
    first = pipeline.build(s, quiet(), check_freshness=False)  # no build yet: everything
    every_model = models(first)
    assert {"stg_olist__products", "dim_seller", "fact_orders", "fact_funnel_events", "dim_date"} <= every_model
    assert [selection for _, selection in builds(s)] == ["(all)"]

    nothing = pipeline.build(s, quiet(), NO_LOOKBACK, check_freshness=False)
    assert nothing.results == [] and len(builds(s)) == 1  # nothing new: no dbt run, nothing recorded

    with open_source(s.source_url) as db:
        (order_id,) = db.execute(
            "SELECT order_id FROM orders WHERE order_status = 'delivered' ORDER BY order_id LIMIT 1"
        )[0]
        db.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = ?", (order_id,))
    extract_and_load(s, "auto", ["orders"])
    orders_only = pipeline.build(s, quiet(), NO_LOOKBACK, check_freshness=False)
    ran = models(orders_only)
    assert {"stg_olist__orders", "fact_orders", "fact_order_items", "bi_monthly_revenue"} <= ran
    assert not ran & {
        "stg_olist__products",
        "stg_olist__geolocation",
        "dim_seller",
        "dim_product",
        "stg_funnel__events",
        "fact_funnel_events",
    }
    assert any(name.startswith("test.") for name, _, _ in orders_only.results)  # their gates run too
    assert warehouse_rows(s, f"SELECT order_status FROM marts.fact_orders WHERE order_id = '{order_id}'") == [
        ("canceled",)
    ]
    assert builds(s)[-1][1] == "source:olist.orders+"

    # A funnel file converted again selects the funnel models, and only those.
    pipeline.funnel_convert(s, quiet(), force=True)
    pipeline.load(s, quiet())
    funnel_only = pipeline.build(s, quiet(), NO_LOOKBACK, check_freshness=False)
    assert "fact_funnel_events" in models(funnel_only) and "fact_orders" not in models(funnel_only)

    # With the project's lookback (3 hours), everything loaded in the 3 hours before the last
    # build is taken again: here, all of it. --full-refresh and scope "all" build everything.
    with open_source(s.source_url) as db:
        db.execute("UPDATE orders SET order_status = 'delivered' WHERE order_id = ?", (order_id,))
    extract_and_load(s, "auto", ["orders"])
    assert models(pipeline.build(s, quiet(), check_freshness=False)) == every_model
    assert models(pipeline.build(s, quiet(), ["--full-refresh"], check_freshness=False)) == every_model
    assert models(pipeline.build(s, quiet(), check_freshness=False, scope="all")) == every_model


def test_a_failed_build_is_not_recorded(settings, olist_csv, monkeypatch):
    s = settings
    fill_source(s, olist_csv, ["orders", "customers"])
    extract_and_load(s, "auto", ["orders", "customers"])

    def failing(settings, args, quiet=False):
        raise DbtError("dbt build failed: a gate")

    monkeypatch.setattr(pipeline, "run_dbt", failing)
    with pytest.raises(DbtError):
        pipeline.build(s, quiet(), check_freshness=False)
    assert builds(s) == []  # the next build starts again from the last successful one


def test_explicit_selection_is_respected_and_not_recorded():
    assert build_scope.is_explicit(["--select", "fact_orders"]) and build_scope.is_explicit(["-s", "x"])
    assert build_scope.is_explicit(["--full-refresh"]) and build_scope.is_explicit(["--exclude=bi"])
    assert not build_scope.is_explicit(["--vars", "{lookback_hours: 0}"])
    assert build_scope.is_partial(["--select", "x"]) and not build_scope.is_partial(["--full-refresh"])


def test_lookback_comes_from_vars_or_the_project(settings):
    assert build_scope.lookback_hours(settings, ["--vars", "{lookback_hours: 0}"]) == 0
    assert build_scope.lookback_hours(settings, ["--vars={lookback_hours: 1.5}"]) == 1.5
    assert build_scope.lookback_hours(settings, []) == 3  # dbt_project.yml


def test_freshness_is_checked_even_when_nothing_is_new(settings, monkeypatch):
    """A pipeline stuck for hours loads nothing; the freshness gate must still fire."""
    from loaders.build.dbt_runner import DbtReport

    calls: list[list[str]] = []

    def run_dbt(s, args, quiet=False):
        calls.append(args)
        return DbtReport("x", True)

    monkeypatch.setattr(pipeline, "run_dbt", run_dbt)
    monkeypatch.setattr(build_scope, "plan", lambda *args: [])
    report = pipeline.build(settings, quiet())
    assert calls == [["source", "freshness"]] and report.results == []


def test_a_quiet_hour_builds_nothing_and_empty_batches_select_nothing(settings, olist_csv):
    """A `dwh run` extracts every table each hour; the tables that did not change get empty
    batches (and a lookback re-read adds versions already in raw). Only a batch that inserted
    rows selects its models: one changed order builds what is downstream of orders, and an hour
    with no change in the source builds nothing."""
    s = settings
    fill_source(s, olist_csv)
    extract_and_load(s)
    pipeline.build(s, quiet(), check_freshness=False)  # the first build: everything

    with open_source(s.source_url) as db:
        (order_id,) = db.execute(
            "SELECT order_id FROM orders WHERE order_status = 'delivered' ORDER BY order_id LIMIT 1"
        )[0]
        db.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = ?", (order_id,))
    _, loads = extract_and_load(s)  # every table: empty batches for all but orders
    inserted = {r.table: r.rows_inserted for r in loads if r.status == "loaded"}
    assert inserted["orders"] == 1 and inserted["customers"] == 0 and len(inserted) > 2
    ran = models(pipeline.build(s, quiet(), NO_LOOKBACK, check_freshness=False))
    assert {"stg_olist__orders", "fact_orders"} <= ran
    assert not ran & {"stg_olist__customers", "stg_olist__products", "stg_olist__geolocation", "dim_seller"}
    assert builds(s)[-1][1] == "source:olist.orders+"

    _, loads = extract_and_load(s)  # a quiet hour: a batch per table, none with anything new
    loaded = [r for r in loads if r.status == "loaded"]
    assert len(loaded) > 2 and all(r.rows_inserted == 0 for r in loaded)
    quiet_hour = pipeline.build(s, quiet(), NO_LOOKBACK, check_freshness=False)
    assert quiet_hour.results == [] and builds(s)[-1][1] == "source:olist.orders+"  # nothing ran
