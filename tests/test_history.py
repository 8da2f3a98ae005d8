"""The run history (loaders/history.py): a row per unit of every stage run, in the warehouse."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from loaders import layout, pipeline
from loaders.funnel import FunnelError
from loaders.history import COLUMNS, HISTORY
from loaders.runs import RunFailed
from loaders.store import ObjectStore

from .helpers import fill_source, quiet, warehouse_rows


def history(settings) -> list[dict]:
    cols = ", ".join(COLUMNS)
    rows = warehouse_rows(settings, f"SELECT {cols} FROM raw.{HISTORY} ORDER BY started_at, unit_seq")
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def records(settings) -> list[str]:
    return ObjectStore(settings.store_url, settings).glob(layout.run_records_glob())


def test_extract_and_load_write_one_row_per_table_and_the_load_ingests_the_extract_records(settings, olist_csv):
    fill_source(settings, olist_csv, ["orders", "sellers"])
    rep = quiet()
    batches = pipeline.extract(settings, rep, "historical", ["orders", "sellers"])
    # the extract ran apart from the warehouse: its records wait in the store
    assert sorted(p.rsplit("/", 1)[1] for p in records(settings)) == [
        "00000.ended.json", "00000.started.json", "00001.ended.json", "00001.started.json",
    ]  # fmt: skip
    pipeline.load(settings, rep, ["orders", "sellers"])
    assert records(settings) == []  # ingested, then removed
    rows = history(settings)
    assert [(r["stage"], r["unit_name"], r["status"]) for r in rows] == [
        ("extract", "orders", "succeeded"), ("extract", "sellers", "succeeded"),
        ("load", "orders", "succeeded"), ("load", "sellers", "succeeded"),
    ]  # fmt: skip
    assert {r["run_id"] for r in rows} == {rep.run.run_id}
    for batch, extract_row, load_row in zip(batches, rows[:2], rows[2:], strict=True):
        assert extract_row["batch_ids"] == load_row["batch_ids"] == batch.batch_id
        assert extract_row["row_count"] == load_row["row_count"] == batch.rows > 0
        assert extract_row["byte_count"] == batch.bytes > 0
        assert all(r["finished_at"] >= r["started_at"] and r["error_message"] is None for r in (extract_row, load_row))
    pipeline.load(settings, rep, ["orders"])  # nothing new: a skipped unit, still a row
    assert [(r["stage"], r["status"], r["batch_ids"]) for r in history(settings)[4:]] == [("load", "skipped", "")]


def test_a_failed_load_records_the_error_line_and_the_batch_and_keeps_what_loaded_before(settings, olist_csv):
    fill_source(settings, olist_csv, ["orders", "sellers"])
    rep = quiet()
    (good,) = pipeline.extract(settings, rep, "historical", ["sellers"])
    (bad,) = pipeline.extract(settings, rep, "historical", ["orders"])
    part = Path(settings.store_url) / bad.parts[0].path
    part.write_bytes(part.read_bytes()[:-8] + b"\0" * 8)  # same size, other bytes
    with pytest.raises(RunFailed, match=f"load orders set aside: batch {bad.batch_id}"):
        pipeline.load(settings, rep, ["orders", "sellers"])  # orders first: sellers still loads
    rows = {(r["stage"], r["unit_name"]): r for r in history(settings)}
    assert rows[("load", "sellers")]["status"] == "succeeded"
    failed = rows[("load", "orders")]
    assert failed["status"] == "set_aside" and failed["finished_at"] is not None
    assert "corrupted" in failed["error_message"] and "\n" not in failed["error_message"]
    assert failed["batch_ids"] == bad.batch_id and failed["row_count"] == 0
    assert warehouse_rows(settings, "SELECT batch_id FROM raw._load_log") == [(good.batch_id,)]


def test_a_failed_extract_and_a_failed_conversion_reach_the_history_through_the_store(settings, olist_csv, tmp_path):
    fill_source(settings, olist_csv, ["orders"])
    rep = quiet()
    with pytest.raises(Exception, match="product_category_name_translation"):
        pipeline.extract(settings, rep, "historical", ["product_category_name_translation"])  # not in the source
    bad = tmp_path / "bad_funnel.csv"
    bad.write_text("not,a,funnel,file\n1,2,3,4\n")
    pipeline.funnel_land(settings, rep, [bad])
    with pytest.raises(FunnelError, match="bad_funnel.csv"):
        pipeline.funnel_convert(settings, rep)
    pipeline.load(settings, rep, ["orders"])
    rows = {(r["stage"], r["unit_name"]): r for r in history(settings)}
    extract = rows[("extract", "product_category_name_translation")]
    conversion = rows[("funnel_convert", "bad_funnel.csv")]
    assert extract["status"] == conversion["status"] == "failed"
    assert "product_category_name_translation" in extract["error_message"]
    assert "bad_funnel.csv" in conversion["error_message"]


KILLED_LOAD = """
import os, signal, sys
from loaders import pipeline
from loaders.config import Settings
from loaders.report import Reporter

record = pipeline._record_batch

def record_then_die(wh, unit, report):
    record(wh, unit, report)  # the unit's line, inside the batch's transaction ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies before COMMIT

pipeline._record_batch = record_then_die
pipeline.load(Settings(data_dir=sys.argv[1]), Reporter(echo=lambda line: None), ["orders"])
"""


def test_a_killed_load_stays_unfinished_and_its_batch_unloaded(settings, olist_csv):
    fill_source(settings, olist_csv, ["orders"])
    (batch,) = pipeline.extract(settings, quiet(), "historical", ["orders"])
    env = {**os.environ, "PYTHONPATH": str(settings.project_dir)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_LOAD), str(settings.data_dir)], env=env)
    assert done.returncode == -signal.SIGKILL
    (killed,) = [r for r in history(settings) if r["stage"] == "load"]
    assert (killed["status"], killed["finished_at"], killed["row_count"]) == ("running", None, 0)
    assert warehouse_rows(settings, "SELECT count(*) FROM raw._load_log") == [(0,)]
    assert warehouse_rows(settings, "SELECT count(*) FROM raw.orders") == [(0,)]
    pipeline.load(settings, quiet(), ["orders"])  # the next run loads the batch; the killed row stays
    loads = [(r["status"], r["batch_ids"]) for r in history(settings) if r["stage"] == "load"]
    assert loads == [("running", ""), ("succeeded", batch.batch_id)]


def test_the_history_is_read_with_the_warehouse_opened_read_only(settings, olist_csv):
    """A reader (dwh status, dwh dashboard) never takes the write lock a load needs."""
    from loaders.warehouses import open_warehouse

    fill_source(settings, olist_csv, ["sellers"])
    pipeline.extract(settings, quiet(), "historical", ["sellers"])
    pipeline.load(settings, quiet(), ["sellers"])
    store = ObjectStore(settings.store_url, settings)
    with open_warehouse(settings, store, read_only=True) as reader:
        assert reader.execute(f"SELECT count(*) FROM raw.{HISTORY}")[0][0] == 2
        with pytest.raises(duckdb.Error):
            reader.execute(f"DELETE FROM raw.{HISTORY}")
        with duckdb.connect(settings.duckdb_path, read_only=True) as other:  # a second reader is fine
            assert other.execute(f"SELECT count(*) FROM raw.{HISTORY}").fetchone() == (2,)


def test_store_records_are_ingested_once_and_a_late_start_never_undoes_an_end(settings):
    from dataclasses import replace

    from loaders.history import StoreHistory, ingest_records
    from loaders.runs import UnitOutcome, utcnow
    from loaders.warehouses import open_warehouse

    store = ObjectStore(settings.store_url, settings)
    record = StoreHistory(store)
    started = UnitOutcome("20261130T040000000000Z-abc123", "extract", "orders", utcnow(), seq=3)
    ended = replace(started, status="succeeded", finished_at=utcnow(), rows=7, batch_ids=["b1"])
    with open_warehouse(settings, store) as wh:
        record(started)  # a unit that started and was killed: only its start record
        assert ingest_records(wh) == 1 and records(settings) == []
        assert wh.execute(f"SELECT status, finished_at FROM raw.{HISTORY}") == [("running", None)]
        record(ended)
        record(started)  # the start written again (a retried write) next to the end
        assert ingest_records(wh) == 1 and records(settings) == []
        record(started)  # and once more after the end was ingested
        ingest_records(wh)
        assert wh.execute(f"SELECT status, row_count, batch_ids FROM raw.{HISTORY}") == [("succeeded", 7, "b1")]
