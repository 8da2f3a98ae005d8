"""Resumable historical extracts: a rerun after a kill goes on from the last checkpoint and
publishes one batch, row for row the same as an uninterrupted extract."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loaders import layout, pipeline
from loaders.config import Settings
from loaders.declarations import declared_tables
from loaders.extract import batch as batch_module
from loaders.extract import read_watermark, readers
from loaders.extract.resume import CHECKPOINT
from loaders.store import ObjectStore

from .helpers import fill_source, quiet

TABLE = "order_items"


@pytest.fixture(params=["sqlite", "mysql"])
def small_parts(request, settings: Settings, monkeypatch) -> Settings:
    """Many small parts and pages, two key ranges: many checkpoints in a small table."""
    monkeypatch.setattr(readers, "FIRST_PAGE_ROWS", 32)
    s = settings.with_(part_rows=100, page_rows=64, batch_rows=50, extract_streams=2)
    if request.param == "mysql":
        s = s.with_(source_url=request.getfixturevalue("mysql_url"))
    return s


def _published(s: Settings) -> list[str]:
    store = ObjectStore(s.store_url, s)
    return store.glob(f"{layout.table_prefix(TABLE)}/historical/batch=*/{layout.MANIFEST}")


def _batch_rows(s: Settings, manifest_key: str) -> list[dict]:
    """The batch's rows in primary-key order, read from the parts its manifest lists."""
    store = ObjectStore(s.store_url, s)
    manifest = store.read_json(manifest_key)
    folder = manifest_key.rsplit("/", 1)[0]
    tables = [pq.read_table(store.full(f"{folder}/{p['path']}")) for p in manifest["parts"]]
    assert sum(t.num_rows for t in tables) == manifest["row_count"]
    rows = pa.concat_tables(tables).to_pylist()
    # _change_seq numbers a snapshot's rows in the order they arrived (ranges interleave): unique,
    # from 0, but not the same order in two extracts
    assert sorted(r.pop("_change_seq") for r in rows) == list(range(len(rows)))
    return sorted(rows, key=lambda r: (r["order_id"], r["order_item_id"]))


def _twin_rows(s: Settings, tmp_path: Path) -> list[dict]:
    """The same source extracted without interruption into another store."""
    twin = s.with_(store_url=str(tmp_path / "twin-store"))
    pipeline.extract(twin, quiet(), "historical", [TABLE])
    [key] = _published(twin)
    return _batch_rows(twin, key)


def _assert_one_complete_batch(s: Settings, tmp_path: Path) -> None:
    [key] = _published(s)
    rows = _batch_rows(s, key)
    assert rows == _twin_rows(s, tmp_path)
    assert len({(r["order_id"], r["order_item_id"]) for r in rows}) == len(rows)  # each row once
    store = ObjectStore(s.store_url, s)
    folder = key.rsplit("/", 1)[0]
    manifest = store.read_json(key)
    listed = {f"{folder}/{p['path']}" for p in manifest["parts"]}
    extra = {layout.batch_manifest(folder), layout.batch_copy_manifest(folder)}
    assert set(store.glob(f"{folder}/*")) == listed | extra  # nothing left of the killed runs
    table = declared_tables(s.project_dir)[TABLE]
    assert CHECKPOINT not in store.read_json(layout.state_path(TABLE))
    assert read_watermark(store, table) is not None


@pytest.mark.parametrize("fail_at", [1, 4, 9])
@pytest.mark.parametrize("after_checkpoint", [True, False])
def test_a_failed_historical_extract_resumes_from_its_last_checkpoint(
    small_parts, olist_csv, tmp_path, monkeypatch, fail_at, after_checkpoint
):
    s = small_parts
    fill_source(s, olist_csv, [TABLE])
    original = batch_module.write_checkpoint
    calls = []

    def failing(store, table, cp):
        calls.append(len(cp.parts))
        if after_checkpoint:
            original(store, table, cp)
        if len(calls) == fail_at:
            raise RuntimeError("injected failure between parts")
        if not after_checkpoint:
            original(store, table, cp)

    monkeypatch.setattr(batch_module, "write_checkpoint", failing)
    with pytest.raises(RuntimeError, match="injected failure"):
        pipeline.extract(s, quiet(), "auto", [TABLE])
    monkeypatch.setattr(batch_module, "write_checkpoint", original)
    assert _published(s) == []
    store = ObjectStore(s.store_url, s)
    state = store.read_json(layout.state_path(TABLE)) if store.exists(layout.state_path(TABLE)) else {}
    saved = fail_at if after_checkpoint else fail_at - 1
    assert len(state.get(CHECKPOINT, {}).get("parts", [])) == saved
    [report] = pipeline.extract(s, quiet(), "auto", [TABLE])  # auto: the table has no watermark yet
    assert report.mode == "historical" and report.resumed == (saved > 0)
    assert len(report.parts) > saved
    _assert_one_complete_batch(s, tmp_path)


def test_sigkilled_at_random_points_then_rerun(small_parts, olist_csv, tmp_path):
    s = small_parts
    fill_source(s, olist_csv, [TABLE])
    env = {
        **os.environ,
        "DWH_DATA_DIR": str(s.data_dir),
        "DWH_SOURCE_URL": s.source_url,
        "DWH_PART_ROWS": str(s.part_rows),
        "DWH_PAGE_ROWS": str(s.page_rows),
        "DWH_BATCH_ROWS": str(s.batch_rows),
    }

    def run(kill_at: int | None) -> int:
        """`dwh extract` in a real process that SIGKILLs itself at its `kill_at`-th piece written."""
        code = textwrap.dedent(f"""
            import os, signal
            import loaders.extract.readers as r
            r.FIRST_PAGE_ROWS = 32
            import loaders.extract.parts as p
            original, count = p.PartWriter.write, [0]
            def write(self, batch):
                count[0] += 1
                if count[0] == {kill_at!r}:
                    os.kill(os.getpid(), signal.SIGKILL)
                original(self, batch)
            p.PartWriter.write = write
            from loaders.cli import main
            main(["extract", "--table", {TABLE!r}])
        """)
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        return result.returncode

    rng = random.Random(18)
    codes = [run(rng.randint(1, 8)) for _ in range(4)]  # each kill lands in a different place
    assert codes == [-9] * 4
    store = ObjectStore(s.store_url, s)
    assert _published(s) == []
    parts_saved = len(store.read_json(layout.state_path(TABLE))[CHECKPOINT]["parts"])
    assert parts_saved > 0  # the kills left work to resume
    assert run(None) == 0
    _assert_one_complete_batch(s, tmp_path)
