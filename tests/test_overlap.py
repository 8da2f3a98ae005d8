"""Overlapping runs wait for the warehouse or skip quietly; a later run removes old litter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from loaders import layout, pipeline
from loaders.config import Settings
from loaders.litter import sweep
from loaders.runlock import SKIPPED, redshift_lock_statements, run_lock
from loaders.store import ObjectStore

from .helpers import fill_source, quiet

TABLES = ["orders", "order_reviews"]


def _env(s: Settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DWH_DATA_DIR": str(s.data_dir),
        "DWH_WAREHOUSE": s.warehouse,
        "DWH_PG_DATABASE": s.pg_database,
        "DWH_DUCKDB_PATH": s.duckdb_path,
    }
    return {**env, **extra}


def _dwh(*args: str) -> list[str]:
    return [sys.executable, "-m", "loaders.cli", *args]


def _holder(s: Settings, release: Path) -> subprocess.Popen:
    """A real process that takes the run lock and keeps it until `release` exists."""
    code = textwrap.dedent(f"""
        import os, time
        from loaders.config import Settings
        from loaders.runlock import run_lock
        with run_lock(Settings.from_env()) as held:
            print("held" if held else "not held", flush=True)
            while not os.path.exists({str(release)!r}):
                time.sleep(0.05)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(s), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _loaded_batches(s: Settings) -> list[tuple]:
    from loaders.warehouses import open_warehouse

    with open_warehouse(s, ObjectStore(s.store_url, s)) as wh:
        if not wh.has_table("_load_log"):
            return []
        return wh.execute("SELECT batch_id, count(*) FROM raw._load_log GROUP BY batch_id")


@pytest.fixture(params=["duckdb", "postgres"])
def engine_settings(request, settings: Settings) -> Settings:
    return request.getfixturevalue("pg_settings") if request.param == "postgres" else settings


def test_an_overlapping_load_skips_with_one_line_then_waits_its_turn(engine_settings, olist_csv, tmp_path):
    s = engine_settings
    fill_source(s, olist_csv, TABLES)
    batches = pipeline.extract(s, quiet(), "historical", TABLES)
    release = tmp_path / "release"
    holder = _holder(s, release)
    try:
        # The holder keeps the lock past the wait: the load skips, quietly, with status 0.
        started = time.monotonic()
        skipped = subprocess.run(
            _dwh("load"), env=_env(s, DWH_LOCK_WAIT_SECONDS="1"), capture_output=True, text=True, timeout=120
        )
        assert (skipped.returncode, skipped.stdout.strip(), skipped.stderr.strip()) == (0, SKIPPED, "")
        assert 1 <= time.monotonic() - started < 60
        assert _loaded_batches(s) == []
        # A load that can wait long enough starts when the holder ends.
        waiting = subprocess.Popen(
            _dwh("load"), env=_env(s, DWH_LOCK_WAIT_SECONDS="120"), stdout=subprocess.PIPE, text=True
        )
        time.sleep(1.5)
        assert waiting.poll() is None  # still waiting
        release.touch()
        out, _ = waiting.communicate(timeout=300)
        assert waiting.returncode == 0 and SKIPPED not in out
    finally:
        release.touch()
        holder.wait(timeout=30)
    assert sorted(b for b, n in _loaded_batches(s) if n == 1) == sorted(str(b.batch_id) for b in batches)


def test_two_concurrent_runs_load_every_batch_once(engine_settings, olist_csv):
    s = engine_settings
    fill_source(s, olist_csv, TABLES)
    env = _env(s, DWH_LOCK_WAIT_SECONDS="300")
    table_args = [a for t in TABLES for a in ("--table", t)]
    procs = [
        subprocess.Popen(_dwh("load", *table_args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    pipeline.extract(s, quiet(), "historical", TABLES)  # published while both start
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    again = subprocess.run(_dwh("load", *table_args), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    loaded = _loaded_batches(s)
    assert len(loaded) == len(TABLES) and all(n == 1 for _, n in loaded)


def test_the_lock_is_released_when_its_holder_is_killed(settings, tmp_path):
    holder = _holder(settings, tmp_path / "never")
    with run_lock(settings.with_(lock_wait_seconds=0)) as held:
        assert not held
    holder.kill()
    holder.wait(timeout=30)
    with run_lock(settings.with_(lock_wait_seconds=5)) as held:
        assert held


def test_redshift_lock_waits_with_a_statement_timeout(settings):
    s = settings.with_(warehouse="redshift", lock_wait_seconds=45)
    sql = redshift_lock_statements(s)
    assert sql[-3:] == ["SET statement_timeout TO 45000", 'LOCK "raw"."_run_lock"', "SET statement_timeout TO 0"]


def _age(root: Path, seconds: float) -> None:
    """Make every file and folder under `root` look `seconds` old."""
    then = time.time() - seconds
    for path in [root, *root.rglob("*")]:
        os.utime(path, (then, then))


def test_a_later_run_removes_old_litter_and_nothing_else(settings, olist_csv):
    s = settings
    fill_source(s, olist_csv, TABLES)
    store = ObjectStore(s.store_url, s)
    published = pipeline.extract(s, quiet(), "historical", ["orders"])[0]
    root = Path(store.root)
    # What killed runs leave: a batch folder with parts but no manifest, an empty one, a
    # half-written state file and a conversion's temporary folder; all seven hours old.
    old_batch = root / layout.batch_dir("orders", "current", "20261130T010000000000Z-aaaaaa")
    (old_batch / "part-00000.parquet").parent.mkdir(parents=True)
    (old_batch / "part-00000.parquet").write_bytes(b"x" * 10)
    (old_batch / "part-00001.parquet.tmp-0123abcd").write_bytes(b"x")
    empty_batch = root / layout.batch_dir("order_reviews", "historical", "20261130T010000000000Z-bbbbbb")
    empty_batch.mkdir(parents=True)
    stray = root / layout.state_path("orders")
    stray = stray.with_name(stray.name + ".tmp-89abcdef")
    stray.write_text("{")
    funnel_tmp = root / layout.funnel_tmp("0123456789ab") / "year=2017/month=1"
    funnel_tmp.mkdir(parents=True)
    (funnel_tmp / "x.parquet").write_bytes(b"x")
    for path in (old_batch, empty_batch, stray, funnel_tmp.parents[1]):
        _age(path, 7 * 3600)
    _age(root / "olist" / "orders", 7 * 3600)  # the published batch is old too: it stays
    # A batch being written now, and fresh funnel temporary files: never touched.
    fresh_batch = root / layout.batch_dir("orders", "current", "20261130T020000000000Z-cccccc")
    fresh_batch.mkdir(parents=True)
    (fresh_batch / "part-00000.parquet.tmp-00000000").write_bytes(b"x")
    fresh_tmp = root / layout.funnel_tmp("fedcba987654")
    fresh_tmp.mkdir(parents=True)
    (fresh_tmp / "y.parquet").write_bytes(b"x")

    lines: list[str] = []
    from loaders.report import Reporter

    pipeline.sweep_litter(s, Reporter(echo=lines.append))
    assert lines == [
        "litter older than 6h removed: 2 unpublished batch folder(s), 1 funnel temporary folder(s), 1 temporary file(s)"
    ]
    assert not old_batch.exists() and not empty_batch.exists() and not stray.exists()
    assert not funnel_tmp.parents[1].exists()
    assert fresh_batch.exists() and fresh_tmp.exists()
    assert published.manifest and Path(published.manifest).is_file()
    assert all(Path(store.full(p.path)).is_file() for p in published.parts)
    assert sweep(store, 6).removed == 0  # nothing left to remove
    assert sweep(store, 6, now=time.time() + 7 * 3600).batch_folders == [
        layout.batch_dir("orders", "current", "20261130T020000000000Z-cccccc")
    ]
