"""`dwh load` with tables at once (PostgreSQL, `Warehouse.parallel_loads`): the same warehouse
as one table after another, a failing table costs only itself, a killed load leaves nothing
half-written (issue 18)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from loaders import pipeline
from loaders.config import Settings
from loaders.declarations import declared_tables, select_tables
from loaders.load import loader
from loaders.report import Reporter
from loaders.runs import RunFailed
from loaders.sources import open_source
from loaders.store import ObjectStore
from loaders.warehouses import PostgresWarehouse
from olist_demo.shop_simulator import simulate_hour

from .conftest import fresh_pg_database
from .helpers import fill_source, quiet, warehouse_rows

TABLES = [t.name for t in select_tables(Path(__file__).resolve().parent.parent, None)]


def _batches(s: Settings, olist_csv: Path, hours: int = 2) -> None:
    """A historical batch of every table, then `hours` simulated hours each extracted: several
    batches per table for the load to keep in order."""
    fill_source(s, olist_csv)
    pipeline.extract(s, quiet(), "historical")
    for hour in range(hours):
        with open_source(s.source_url) as db:
            simulate_hour(db, random.Random(100 + hour), 30, 60)
        pipeline.extract(s, quiet(), "current")


def _largest_first(s: Settings) -> list[str]:
    """The tables in the order a parallel load starts them: most batch bytes first."""
    store = ObjectStore(s.store_url, s)
    manifests = {
        t: [store.read_json(f"{f}/_manifest.json") for _, f in loader.list_batches(store, table)]
        for t, table in declared_tables(s.project_dir).items()
    }
    sizes = {t: sum(p["bytes"] for m in ms for p in m["parts"]) for t, ms in manifests.items()}
    return sorted(TABLES, key=lambda t: -sizes[t])


def _contents(s: Settings) -> dict[str, list[tuple]]:
    """Every raw table row for row (all columns but the load time, which differs between two
    loads) and the load log (but its load time), sorted."""
    declared = declared_tables(s.project_dir)
    out = {}
    for name in TABLES:
        cols = [*declared[name].column_names, "_op", "_row_hash", "_change_seq", "_batch_id"]
        listed = ", ".join(f'"{c}"' for c in cols)
        out[name] = warehouse_rows(s, f'SELECT {listed} FROM raw."{name}" ORDER BY {listed}')
    out["_load_log"] = warehouse_rows(
        s,
        "SELECT batch_id, table_name, mode, rows_in_batch, rows_inserted, cursor_lower, cursor_upper "
        "FROM raw._load_log ORDER BY batch_id",
    )
    return out


def _sequential_twin(s: Settings, database: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    twin = s.with_(pg_database=database)
    with monkeypatch.context() as m:
        m.setattr(PostgresWarehouse, "parallel_loads", 1)
        pipeline.load(twin, quiet())
    return twin


def test_parallel_load_gives_the_same_warehouse_as_a_sequential_one(pg_settings, olist_csv, monkeypatch):
    s = pg_settings
    _batches(s, olist_csv)
    store = ObjectStore(s.store_url, s)
    per_table = {t: len(loader.list_batches(store, declared_tables(s.project_dir)[t])) for t in TABLES}
    assert all(n == 3 for n in per_table.values()), per_table
    assert PostgresWarehouse.parallel_loads > 1
    # The two largest tables (started first) must be in flight together (a barrier both wait
    # at), each table's batches on one connection, in batch order.
    first = _largest_first(s)[:2]
    both = threading.Barrier(2, timeout=20)
    seen: list[tuple[str, str, int]] = []
    real = loader.load_batch

    def load_batch(wh, table, folder, *args, **kwargs):
        if table.name in first and "historical" in folder:
            both.wait()
        report = real(wh, table, folder, *args, **kwargs)
        seen.append((table.name, report.batch_id, id(wh.conn)))
        return report

    monkeypatch.setattr(loader, "load_batch", load_batch)
    reports = pipeline.load(s, quiet())
    monkeypatch.setattr(loader, "load_batch", real)
    assert [r.table for r in reports] == [t for t in TABLES for _ in range(3)]  # reported in table order
    assert {r.status for r in reports} == {"loaded"}
    for name in TABLES:
        mine = [(b, c) for t, b, c in seen if t == name]
        assert [b for b, _ in mine] == sorted(b for b, _ in mine)  # batch order
        assert len({c for _, c in mine}) == 1  # one connection per table
    assert len({c for _, _, c in seen}) > 1
    with fresh_pg_database() as database:
        twin = _sequential_twin(s, database, monkeypatch)
        assert _contents(s) == _contents(twin)
        assert sum(len(rows) for rows in _contents(s).values()) > 1000
    again = pipeline.load(s, quiet())  # exactly once
    assert {r.status for r in again} == {"skipped"}


def test_a_failing_table_does_not_stop_the_others(pg_settings, olist_csv, monkeypatch):
    s = pg_settings
    _batches(s, olist_csv, hours=1)
    store = ObjectStore(s.store_url, s)
    bad = _largest_first(s)[1]  # loads beside the largest and the third
    (part, *_) = store.glob(f"olist/{bad}/historical/batch=*/part-*.parquet")
    path = Path(store.full(part))
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    lines: list[str] = []
    rep = Reporter(echo=lines.append)
    with pytest.raises(RunFailed, match=rf"{bad}.*corrupted"):
        pipeline.load(s, rep)
    assert warehouse_rows(s, f'SELECT count(*) FROM raw."{bad}"') == [(0,)]
    logged = dict(warehouse_rows(s, "SELECT table_name, count(*) FROM raw._load_log GROUP BY table_name"))
    assert logged == {t: 2 for t in TABLES if t != bad}
    outcomes = {o.unit: o.status for o in rep.run.outcomes if o.stage == "load"}
    assert outcomes == {t: "set_aside" if t == bad else "succeeded" for t in TABLES}
    history = dict(warehouse_rows(s, "SELECT unit_name, status FROM raw._run_history WHERE stage = 'load'"))
    assert history == outcomes
    # each table's lines in table order, the set-aside one in its place
    named = [next(t for t in TABLES if f"  {t} " in line) for line in lines if any(f"  {t} " in line for t in TABLES)]
    assert named == sorted(named, key=TABLES.index)
    assert any(line.startswith(f"  {bad} ") and "set aside:" in line for line in lines)
    path.write_bytes(original)
    reports = pipeline.load(s, quiet())  # repaired: the next run loads it and its later batch
    assert [r.batch_id for r in reports if r.status == "loaded"] == [
        b for b, _ in loader.list_batches(store, declared_tables(s.project_dir)[bad])
    ]
    with fresh_pg_database() as database:
        assert _contents(s) == _contents(_sequential_twin(s, database, monkeypatch))


def test_a_killed_parallel_load_leaves_nothing_half_written(pg_settings, olist_csv, monkeypatch):
    s = pg_settings
    _batches(s, olist_csv, hours=1)
    victim = _largest_first(s)[1]  # among the three that start first
    # The victim dies at its first load-log insert while the two other tables running sit in
    # their own load transactions, their stages filled (they wait 3 s after COPY).
    patch = textwrap.dedent(f"""
        import os, signal, time
        import loaders.warehouses as w
        fill, execute = w.PostgresWarehouse.fill_stage, w.PostgresWarehouse.execute
        def fill_stage(self, table, manifest, folder):
            fill(self, table, manifest, folder)
            if table.name != {victim!r}:
                time.sleep(3)
        def killing_execute(self, sql):
            if sql.startswith('INSERT INTO "raw"."_load_log"') and "'{victim}'" in sql:
                os.kill(os.getpid(), signal.SIGKILL)
            return execute(self, sql)
        w.PostgresWarehouse.fill_stage = fill_stage
        w.PostgresWarehouse.execute = killing_execute
        from loaders.cli import main
        main(["load"])
    """)
    env = {
        **os.environ,
        "DWH_DATA_DIR": str(s.data_dir),
        "DWH_WAREHOUSE": "postgres",
        "DWH_PG_HOST": s.pg_host,
        "DWH_PG_PORT": str(s.pg_port),
        "DWH_PG_DATABASE": s.pg_database,
    }
    done = subprocess.run([sys.executable, "-c", patch], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    # Nothing half-written: no raw row of a batch the load log lacks, nothing of the victim.
    for name in TABLES:
        orphans = warehouse_rows(
            s, f'SELECT count(*) FROM raw."{name}" WHERE "_batch_id" NOT IN (SELECT batch_id FROM raw._load_log)'
        )
        assert orphans == [(0,)], name
    assert warehouse_rows(s, f'SELECT count(*) FROM raw."{victim}"') == [(0,)]
    running = {r[0] for r in warehouse_rows(s, "SELECT unit_name FROM raw._run_history WHERE status = 'running'")}
    assert victim in running and len(running) == 3, running  # killed with three tables loading
    for other in running - {victim}:  # they sat inside their first load transactions
        assert warehouse_rows(s, f"SELECT count(*) FROM raw._load_log WHERE table_name = '{other}'") == [(0,)]
        assert warehouse_rows(s, f'SELECT count(*) FROM raw."{other}"') == [(0,)]
    reports = pipeline.load(s, quiet())  # the next run loads everything, exactly once
    assert {r.status for r in reports} == {"loaded"}
    with fresh_pg_database() as database:
        assert _contents(s) == _contents(_sequential_twin(s, database, monkeypatch))
