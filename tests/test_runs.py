"""A run records the outcome of every unit of work (loaders/runs.py), stage by stage."""

from __future__ import annotations

import pytest

from loaders import pipeline
from loaders.report import Reporter
from loaders.runs import Run, UnitOutcome

from .helpers import fill_source


def test_a_unit_records_success_failure_and_its_error_line_and_notifies_observers():
    seen: list[tuple[str, str]] = []
    run = Run(observers=[lambda o: seen.append((o.unit, o.status))])
    with run.unit("extract", "orders") as unit:
        unit.rows, unit.batch_ids = 12, ["b1"]
    with pytest.raises(ValueError), run.unit("extract", "customers"):
        raise ValueError("column 'x' does not fit\nsecond line")
    with run.unit("load", "orders") as unit:
        unit.status = "skipped"
    ok, failed, skipped = run.outcomes
    assert (ok.status, ok.rows, ok.batch_ids, ok.error) == ("succeeded", 12, ["b1"], None)
    assert (failed.status, failed.error) == ("failed", "column 'x' does not fit")
    assert skipped.status == "skipped" and all(o.finished_at and o.finished_at >= o.started_at for o in run.outcomes)
    assert run.failures == [failed]
    assert seen == [("orders", "running"), ("orders", "succeeded"), ("customers", "running"),
                    ("customers", "failed"), ("orders", "running"), ("orders", "skipped")]  # fmt: skip
    assert len({o.run_id for o in run.outcomes}) == 1


def test_the_stages_record_one_unit_per_table(settings, olist_csv):
    rep = Reporter(echo=lambda line: None)
    fill_source(settings, olist_csv, ["orders", "sellers"])
    pipeline.extract(settings, rep, "historical", ["orders", "sellers"])
    pipeline.load(settings, rep, ["orders", "sellers"])
    pipeline.load(settings, rep, ["orders"])  # nothing new: skipped
    units: list[UnitOutcome] = rep.run.outcomes
    assert [(o.stage, o.unit, o.status) for o in units] == [
        ("extract", "orders", "succeeded"), ("extract", "sellers", "succeeded"),
        ("load", "orders", "succeeded"), ("load", "sellers", "succeeded"), ("load", "orders", "skipped"),
    ]  # fmt: skip
    extract_orders, _, load_orders, _, _ = units
    assert extract_orders.rows > 0 and extract_orders.bytes > 0 and len(extract_orders.batch_ids) == 1
    assert load_orders.batch_ids == extract_orders.batch_ids and load_orders.rows == extract_orders.rows


def test_first_line_keeps_the_reason_an_announcing_line_introduces():
    from loaders.runs import first_line

    assert first_line(ValueError("plain\nsecond")) == "plain"
    assert first_line(ValueError("")) == "ValueError"
    dbt = ValueError("dbt build --select x failed:\n  test.a (fail): Got 1 result\n  test.b (fail): Got 2 results")
    assert first_line(dbt) == "dbt build --select x failed: test.a (fail): Got 1 result (and 1 more)"
    assert first_line(ValueError("failed:\n  only one")) == "failed: only one"
