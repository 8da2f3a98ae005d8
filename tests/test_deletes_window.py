"""The delete hooks read only the tombstones of the build window (macros/deletes.sql, issue 18),
and miss none: on DuckDB and on PostgreSQL, a tombstone loaded at the newest load time of the
run (the edge of the window), and one loaded by a batch whose build never ran, both leave
staging, the intermediate models and the facts; the result equals a full refresh."""

from __future__ import annotations

import pytest

from loaders import pipeline
from loaders.sources import open_source

from .helpers import extract_and_load, fill_source, quiet, warehouse_rows

pytestmark = pytest.mark.slow
NO_LOOKBACK = ["--vars", "{lookback_hours: 0}"]
ORDER_MODELS = [
    "staging.stg_olist__orders",
    "staging.stg_olist__order_items",
    "intermediate.int_order_items_aggregated",
    "intermediate.int_order_payments_aggregated",
    "marts.fact_orders",
    "marts.fact_order_items",
]


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, settings):
    return settings if request.param == "duckdb" else request.getfixturevalue("pg_settings")


def build(s, *args: str) -> None:
    report = pipeline.build(s, quiet(), [*args], check_freshness=False)
    assert report.success, report.failures


def present(s, order_id: str) -> dict[str, int]:
    """Rows of `order_id` per model."""
    return {m: warehouse_rows(s, f"SELECT count(*) FROM {m} WHERE order_id = '{order_id}'")[0][0] for m in ORDER_MODELS}


def rows(s) -> dict[str, list[tuple]]:
    out = {}
    for m in ORDER_MODELS:
        got = warehouse_rows(s, f"SELECT * FROM {m}")
        out[m] = sorted(tuple(str(v) for v in r) for r in got)
    return out


def newest_op(rows: list[tuple], order_id: str) -> str:
    ops = [op for oid, op in rows if oid == order_id and op != "d"]
    assert ops, rows
    return ops[0]


def _delete_order(db, order_id: str) -> None:
    for t in ("order_items", "order_payments", "order_reviews", "orders"):
        db.execute(f"DELETE FROM {t} WHERE order_id = ?", (order_id,))


def test_tombstones_at_the_window_edge_and_from_an_unbuilt_batch_are_deleted(warehouse, olist_csv):
    s = warehouse
    fill_source(s, olist_csv)
    extract_and_load(s)
    build(s, *NO_LOOKBACK)
    with open_source(s.source_url) as db:
        first, second, changed, later = (
            r[0] for r in db.execute("SELECT order_id FROM order_items GROUP BY order_id ORDER BY order_id LIMIT 4")
        )
        # one batch: a new version of `changed` (the run's newest load time) and the tombstone
        # of `first`, stamped with the same _loaded_at. The window is `_loaded_at > newest
        # load time before the run` (lookback 0): read after the insert, it would miss `first`.
        _delete_order(db, first)
        db.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = ?", (changed,))
    extract_and_load(s, "historical")
    newest = warehouse_rows(
        s, "SELECT order_id, _op FROM raw.orders WHERE _loaded_at = (SELECT max(_loaded_at) FROM raw.orders)"
    )
    # both in the same load, at the newest load time: the edge case, not two loads
    assert sorted(newest) == sorted([(first, "d"), (changed, newest_op(newest, changed))])
    build(s, *NO_LOOKBACK)
    assert present(s, first) == dict.fromkeys(ORDER_MODELS, 0)
    assert warehouse_rows(s, f"SELECT order_status FROM marts.fact_orders WHERE order_id = '{changed}'") == [
        ("canceled",)
    ]
    # a tombstone whose batch was loaded but never built (a failed or skipped build), then a
    # later batch with newer rows, built once: the window starts where the last build left off
    with open_source(s.source_url) as db:
        _delete_order(db, second)
    extract_and_load(s, "historical")
    with open_source(s.source_url) as db:
        db.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = ?", (later,))
    extract_and_load(s)
    assert present(s, second)["marts.fact_orders"] == 1
    build(s, *NO_LOOKBACK)
    assert present(s, second) == dict.fromkeys(ORDER_MODELS, 0)
    assert present(s, later)["marts.fact_orders"] == 1
    incremental = rows(s)
    build(s, "--full-refresh", *NO_LOOKBACK)
    assert rows(s) == incremental
