"""Deletes are data (issue 12, contract 8): snapshot tombstones, staging and both facts follow,
versions by content, and the incremental path equals a full refresh."""

from __future__ import annotations

import random

import duckdb
import pytest

from loaders import pipeline
from loaders.sources import open_source
from olist_demo.shop_simulator import simulate_hour

from .helpers import extract_and_load, fill_source, quiet, warehouse_rows

pytestmark = pytest.mark.slow
NO_LOOKBACK = ["--vars", "{lookback_hours: 0}"]
FACTS = ["marts.fact_orders", "marts.fact_order_items"]
STAGING = [
    "staging.stg_olist__orders",
    "staging.stg_olist__order_items",
    "staging.stg_olist__order_payments",
    "staging.stg_olist__order_reviews",
]


def snapshot(settings, relations: list[str]) -> dict[str, list[tuple]]:
    with duckdb.connect(settings.duckdb_path) as con:
        return {r: con.execute(f"SELECT * FROM {r} ORDER BY ALL").fetchall() for r in relations}


def build(settings, *args: str):
    return pipeline.build(settings, quiet(), [*args], check_freshness=False)


def _pick(db, sql: str) -> str:
    return db.execute(sql)[0][0]


def test_deletes_leave_staging_and_facts_and_equal_a_full_refresh(settings, olist_csv):
    s = settings
    fill_source(s, olist_csv)
    extract_and_load(s)
    build(s, *NO_LOOKBACK)
    with open_source(s.source_url) as db:
        gone = _pick(db, "SELECT order_id FROM order_items ORDER BY order_id LIMIT 1")
        two = db.execute(
            "SELECT order_id FROM order_items WHERE order_id <> ? GROUP BY order_id HAVING count(*) >= 2 "
            "ORDER BY order_id LIMIT 1",
            (gone,),
        )[0][0]
        items_before = db.execute("SELECT count(*) FROM order_items WHERE order_id = ?", (two,))[0][0]
        items_gone = db.execute("SELECT count(*) FROM order_items WHERE order_id = ?", (gone,))[0][0]
        for t in ("order_items", "order_payments", "order_reviews", "orders"):
            db.execute(f"DELETE FROM {t} WHERE order_id = ?", (gone,))
        db.execute("DELETE FROM order_items WHERE order_id = ? AND order_item_id = 1", (two,))
        total_items = db.execute("SELECT count(*) FROM order_items")[0][0]
        total_orders = db.execute("SELECT count(*) FROM orders")[0][0]
    # an hourly (cursor) run cannot see a delete ...
    extract_and_load(s)
    build(s, *NO_LOOKBACK)
    assert warehouse_rows(s, f"SELECT count(*) FROM marts.fact_orders WHERE order_id = '{gone}'") == [(1,)]
    # ... a historical extract (a snapshot) writes a tombstone for every key it lacks
    extract_and_load(s, "historical")
    tombstones = warehouse_rows(
        s, "SELECT order_id, order_status, _row_hash IS NOT NULL FROM raw.orders WHERE _op = 'd'"
    )
    assert tombstones == [(gone, None, True)]
    assert warehouse_rows(s, "SELECT count(*) FROM raw.order_items WHERE _op = 'd'") == [(items_gone + 1,)]
    build(s, *NO_LOOKBACK)
    assert warehouse_rows(s, f"SELECT count(*) FROM marts.fact_orders WHERE order_id = '{gone}'") == [(0,)]
    assert warehouse_rows(s, f"SELECT count(*) FROM marts.fact_order_items WHERE order_id = '{gone}'") == [(0,)]
    assert warehouse_rows(s, f"SELECT item_count FROM marts.fact_orders WHERE order_id = '{two}'") == [
        (items_before - 1,)
    ]
    assert warehouse_rows(s, f"SELECT min(order_item_id) FROM marts.fact_order_items WHERE order_id = '{two}'") == [
        (2,)
    ]
    assert warehouse_rows(s, "SELECT count(*) FROM staging.stg_olist__order_items") == [(total_items,)]
    assert warehouse_rows(s, "SELECT count(*) FROM marts.fact_orders") == [(total_orders,)]
    # a second snapshot adds no tombstone (the keys are already deleted)
    extract_and_load(s, "historical")
    assert warehouse_rows(s, "SELECT count(*) FROM raw.orders WHERE _op = 'd'") == [(1,)]
    incremental = snapshot(s, FACTS + STAGING)
    build(s, "--full-refresh")
    assert snapshot(s, FACTS + STAGING) == incremental


def test_a_change_under_an_unchanged_cursor_is_a_new_version(settings, olist_csv):
    """cursor-not-bumped: the content changed, the cursor did not; the re-read row is a new
    version (its row hash differs) and wins over the old one (same cursor, newer batch)."""
    s = settings
    fill_source(s, olist_csv, ["orders"])
    extract_and_load(s, tables=["orders"])
    with open_source(s.source_url) as db:
        oid = _pick(db, "SELECT order_id FROM orders WHERE order_status = 'delivered' ORDER BY order_id LIMIT 1")
        db.execute('DROP TRIGGER IF EXISTS "orders__touch"')
        db.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = ?", (oid,))
    extract_and_load(s, "historical", ["orders"])
    rows = warehouse_rows(s, f"SELECT order_status, _op FROM raw.orders WHERE order_id = '{oid}' ORDER BY _batch_id")
    assert rows == [("delivered", "r"), ("canceled", "r")]
    # an identical re-read adds nothing
    before = warehouse_rows(s, "SELECT count(*) FROM raw.orders")
    extract_and_load(s, "historical", ["orders"])
    assert warehouse_rows(s, "SELECT count(*) FROM raw.orders") == before


def test_prune_value_moving_later_or_earlier_leaves_one_row(settings, olist_csv):
    """prune-bound-duplicate: delete_insert_pruned deletes the old row wherever the prune
    column (purchased_at) moved: later (alone in its run, so every new value is newer than the
    old one) and earlier."""
    s = settings
    fill_source(s, olist_csv)
    extract_and_load(s)
    build(s, *NO_LOOKBACK)
    with open_source(s.source_url) as db:
        later, earlier = (
            r[0] for r in db.execute("SELECT order_id FROM orders ORDER BY order_purchase_timestamp LIMIT 2")
        )
    for oid, shift in ((later, "+1 day"), (earlier, "-400 days")):
        with open_source(s.source_url) as db:
            db.execute(
                "UPDATE orders SET order_purchase_timestamp = datetime(order_purchase_timestamp, ?) WHERE order_id = ?",
                (shift, oid),
            )
            (expected,) = db.execute("SELECT order_purchase_timestamp FROM orders WHERE order_id = ?", (oid,))[0]
        extract_and_load(s)
        build(s, *NO_LOOKBACK)
        rows = warehouse_rows(
            s, f"SELECT CAST(purchased_at AS VARCHAR) FROM marts.fact_orders WHERE order_id = '{oid}'"
        )
        assert rows == [(expected,)], shift
        items = warehouse_rows(
            s, f"SELECT count(DISTINCT purchased_at) FROM marts.fact_order_items WHERE order_id = '{oid}'"
        )
        assert items in ([(1,)], [(0,)])
    assert warehouse_rows(s, "SELECT count(*) - count(DISTINCT order_id) FROM marts.fact_orders") == [(0,)]


def _random_edits(db, rng: random.Random) -> None:
    """Deletes, an update that leaves the cursor alone and a commit older than the lookback."""
    orders = [r[0] for r in db.execute("SELECT order_id FROM orders ORDER BY order_id")]
    gone = rng.choice(orders)
    for t in ("order_items", "order_payments", "order_reviews", "orders"):
        db.execute(f"DELETE FROM {t} WHERE order_id = ?", (gone,))
    multi = [r[0] for r in db.execute("SELECT order_id FROM order_items GROUP BY order_id HAVING count(*) > 1")]
    if multi:
        oid = rng.choice(multi)
        db.execute(
            "DELETE FROM order_items WHERE order_id = ? AND order_item_id = "
            "(SELECT max(order_item_id) FROM order_items WHERE order_id = ?)",
            (oid, oid),
        )
    (trigger,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'orders__touch'")[0]
    db.execute('DROP TRIGGER "orders__touch"')  # an ORM writes the cursor back unchanged
    db.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = ?", (rng.choice(orders[:-1]),))
    db.execute(trigger)
    item = db.execute("SELECT order_id, order_item_id FROM order_items ORDER BY random() LIMIT 1")[0]
    db.execute(  # a late commit: its cursor is just after the old one, behind the watermark (no lookback)
        "UPDATE order_items SET price = printf('%.2f', CAST(price AS REAL) + 0.5), "
        "updated_at = strftime('%Y-%m-%d %H:%M:%f', updated_at, '+0.001 seconds') "
        "WHERE order_id = ? AND order_item_id = ?",
        item,
    )


def test_randomized_hours_converge_after_verify_and_repair(settings, olist_csv):
    """Several simulated hours of inserts, updates, deletes, unbumped updates and late commits
    with runs in between; after a final `dwh run` that verifies and repairs, staging equals the
    source row for row (compared here, not with dwh verify) and the facts equal a full refresh."""
    s = settings.with_(verify_every="0", lookback_seconds=0)  # a late commit is then missed until verified
    fill_source(s, olist_csv)
    extract_and_load(s)
    build(s)
    rng = random.Random(12)
    for _ in range(3):
        with open_source(s.source_url) as db:
            simulate_hour(db, rng, orders_per_hour=6, progress_per_hour=15)
            _random_edits(db, rng)
        pipeline.run(s, quiet())
    pipeline.run(s.with_(verify_every="24h"), quiet())  # never verified: due now
    with open_source(s.source_url) as db:
        source_orders = sorted(
            (r[0], r[1], str(r[2]))
            for r in db.execute("SELECT order_id, order_status, order_purchase_timestamp FROM orders")
        )
        source_items = sorted(
            (r[0], int(r[1]), f"{float(r[2]):.2f}")
            for r in db.execute("SELECT order_id, order_item_id, price FROM order_items")
        )
    staged_orders = sorted(
        (r[0], r[1], str(r[2]))
        for r in warehouse_rows(s, "SELECT order_id, order_status, purchased_at FROM staging.stg_olist__orders")
    )
    staged_items = sorted(
        (r[0], int(r[1]), f"{r[2]:.2f}")
        for r in warehouse_rows(s, "SELECT order_id, order_item_id, price FROM staging.stg_olist__order_items")
    )
    assert staged_orders == source_orders
    assert staged_items == source_items
    incremental = snapshot(s, FACTS)
    build(s, "--full-refresh")
    assert snapshot(s, FACTS) == incremental
