"""Loads cost the batch: the "new versions only" check reads the raw rows in the batch's key and
cursor range only, and loads the same rows as the check over the whole table."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from loaders import pipeline
from loaders.config import Settings
from loaders.declarations import declared_tables
from loaders.layout import Mode
from loaders.load import list_batches
from loaders.load import loader as loader_module
from loaders.load.statements import after_stage_statements, insert_statement, stage_bounds
from loaders.manifest import read_manifest
from loaders.sources import open_source
from loaders.store import ObjectStore
from loaders.warehouses import Warehouse, open_warehouse
from olist_demo.shop_simulator import simulate_hour

from .helpers import fill_source, quiet

TABLES = ["orders", "order_items", "order_payments"]


@pytest.fixture(params=["duckdb", "postgres"])
def engine_settings(request, settings: Settings) -> Settings:
    return request.getfixturevalue("pg_settings") if request.param == "postgres" else settings


def _raw(s: Settings, tables: list[str]) -> dict[str, list[tuple]]:
    """Each raw table's declared columns, sorted (the batch columns differ between twins)."""
    declared = declared_tables(s.project_dir)
    out = {}
    with open_warehouse(s, ObjectStore(s.store_url, s)) as wh:
        for name in tables:
            cols = ", ".join(f'"{c}"' for c in declared[name].column_names)
            out[name] = sorted(wh.execute(f'SELECT {cols} FROM raw."{name}"'), key=repr)
    return out


def _touch(s: Settings, rng: random.Random) -> None:
    """Change a few existing orders, some of them twice within the lookback."""
    with open_source(s.source_url) as db:
        ids = [r[0] for r in db.execute("SELECT order_id FROM orders ORDER BY order_id")]
        for order_id in rng.sample(ids, 5):
            status = rng.choice(["shipped", "delivered", "canceled"])
            db.execute("UPDATE orders SET order_status = ? WHERE order_id = ?", (status, order_id))


def test_range_restricted_loads_insert_the_same_rows_as_whole_table_checks(
    engine_settings, olist_csv, tmp_path, monkeypatch
):
    s = engine_settings
    fill_source(s, olist_csv, [*TABLES, "customers", "products", "sellers", "order_reviews"])
    # The control: the same sequence into its own store and DuckDB file, with the check over the
    # whole table (no bounds), as loads were before.
    control = s.with_(
        warehouse="duckdb", store_url=str(tmp_path / "control-store"), duckdb_path=str(tmp_path / "control.duckdb")
    )
    bounded_stage = loader_module.stage_bounds
    rng = random.Random(18)
    steps: list[Mode] = ["historical"]
    steps += [rng.choice(["current", "current", "current", "historical"]) for _ in range(7)]
    inserted: dict[str, list[int]] = {"bounded": [], "whole": []}
    for i, mode in enumerate(steps):
        if i:
            action = rng.choice(["simulate", "touch", "nothing"])
            with open_source(s.source_url) as db:
                if action == "simulate":
                    simulate_hour(db, rng, orders_per_hour=10, progress_per_hour=20)
            if action == "touch":
                _touch(s, rng)
        for twin, name, bounds in ((s, "bounded", bounded_stage), (control, "whole", lambda wh, t: None)):
            monkeypatch.setattr(loader_module, "stage_bounds", bounds)
            pipeline.extract(twin, quiet(), mode, TABLES)
            reports = pipeline.load(twin, quiet(), TABLES)
            inserted[name] += [r.rows_inserted for r in reports if r.status == "loaded"]
    assert inserted["bounded"] == inserted["whole"]
    assert sum(inserted["bounded"][len(TABLES) :]) > 0  # later batches did add versions
    assert steps.count("historical") > 1 and steps.count("current") > 1
    assert _raw(s, TABLES) == _raw(control, TABLES)


def _stage_and_render(s: Settings) -> tuple[Warehouse, str]:
    """Stage the newest batch of orders in an open warehouse and render its insert with bounds."""
    store = ObjectStore(s.store_url, s)
    table = declared_tables(s.project_dir)["orders"]
    folder = list_batches(store, table)[-1][1]
    manifest = read_manifest(store, table, folder)
    wh = open_warehouse(s, store)
    wh.connect()
    wh.execute(wh.create_stage_statement(table))
    wh.fill_stage(table, manifest, folder)
    for sql in after_stage_statements(wh, table, manifest):  # the row hashes, as the load computes them
        wh.execute(sql)
    bounds = stage_bounds(wh, table)
    assert bounds is not None
    return wh, insert_statement(wh, table, manifest["batch_id"], datetime(2026, 11, 30, 3), bounds=bounds)


def _a_current_batch(s: Settings, olist_csv) -> None:
    """Raw orders with years of history, then an hourly batch that overlaps the last one (the
    lookback), extracted and not loaded yet."""
    fill_source(s, olist_csv, ["orders"])
    with open_source(s.source_url) as db:  # the history: rows last changed long ago
        db.execute("UPDATE orders SET updated_at = '2018-09-01 00:00:00.000000'")
    pipeline.extract(s, quiet(), "historical", ["orders"])
    pipeline.load(s, quiet(), ["orders"])
    rng = random.Random(4)
    _touch(s, rng)
    pipeline.extract(s, quiet(), "current", ["orders"])
    pipeline.load(s, quiet(), ["orders"])
    _touch(s, rng)
    pipeline.extract(s, quiet(), "current", ["orders"])


def _scans(node: dict) -> list[dict]:
    """Every table scan of a DuckDB JSON plan."""
    found = [node["extra_info"]] if node.get("name", "").endswith("_SCAN") else []
    return found + [scan for child in node.get("children", []) for scan in _scans(child)]


def test_duckdb_prunes_the_raw_scan_by_key_and_cursor(settings, olist_csv):
    _a_current_batch(settings, olist_csv)
    wh, sql = _stage_and_render(settings)
    try:
        plan = json.loads(wh.execute("EXPLAIN (FORMAT json) " + sql)[0][1])
    finally:
        wh.close()
    raw_scans = [scan for tree in plan for scan in _scans(tree) if scan.get("Table") == "warehouse.raw.orders"]
    # two scans of raw: the version with the staged hash (r) and later versions of its key (n)
    assert len(raw_scans) == 2, raw_scans
    texts = [" ".join(f) if isinstance(f := scan.get("Filters", ""), list) else f for scan in raw_scans]
    # pushed into r's scan, so row groups outside the range are skipped (the history lies below
    # the batch's cursor range). n's scan is bounded by the key range only (tests/test_redshift_sql.py
    # checks the rendered bound); here that range spans every id, which DuckDB drops as implied by
    # its statistics, as it drops any bound its statistics already imply.
    assert any(
        all(bound in filters for bound in ("order_id >= '", "order_id <= '", "updated_at >= '")) for filters in texts
    ), texts


def test_postgres_reads_the_batchs_rows_through_the_raw_indexes(pg_settings, olist_csv):
    """Raw tables on PostgreSQL have a BRIN index on the cursor and a B-tree on the key
    (loaders/warehouses/postgres.py): the check reads the batch's range through them and looks up
    the later versions of each key by the key, never scanning raw."""
    _a_current_batch(pg_settings, olist_csv)
    wh, sql = _stage_and_render(pg_settings)
    try:
        wh.execute("SET enable_seqscan = off")  # a small table: show that the indexes can serve it
        plan = "\n".join(row[0] for row in wh.execute("EXPLAIN " + sql))
        indexes = {r[0] for r in wh.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'orders'")}
    finally:
        wh.close()
    assert {"orders__cursor_brin", "orders__key", "orders__tombstone_key"} <= indexes, indexes
    assert "Seq Scan on orders" not in plan, plan
    lines = plan.splitlines()
    r_scan = next(i for i, line in enumerate(lines) if "Bitmap Heap Scan on orders r" in line)
    bounds = "\n".join(lines[r_scan : r_scan + 4])
    assert "(order_id)::text >= '" in bounds and "updated_at >= '" in bounds, plan
    n_probe = next(i for i, line in enumerate(lines) if "Index Scan using orders__key on orders n" in line)
    assert "((order_id)::text = (r.order_id)::text)" in lines[n_probe + 1], plan
