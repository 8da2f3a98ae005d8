"""`dwh status`: text and JSON, a late table, a failed batch, and the exit status for cron."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
from click.testing import CliRunner

from loaders import pipeline
from loaders.cli import main
from loaders.runs import utcnow
from loaders.status import EXIT_FAILED, EXIT_LATE, EXIT_OK, collect

from .helpers import fill_source, quiet

TABLES = ["orders", "sellers"]


def status(settings, *args: str):
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "status", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def loaded(settings, olist_csv):
    fill_source(settings, olist_csv, TABLES)
    pipeline.extract(settings, quiet(), "historical", TABLES)
    pipeline.load(settings, quiet(), TABLES)


def test_a_current_warehouse_is_ok_in_text_and_json(settings, olist_csv):
    loaded(settings, olist_csv)
    text = status(settings)
    assert text.exit_code == EXIT_OK, text.output
    lines = text.output.splitlines()
    orders = next(line for line in lines if line.split()[:1] == ["orders"])
    assert "pass" in orders.split() and "never" in orders.split()  # freshness verdict, no verify yet
    assert lines[-1] == "ok (exit status 0)"
    doc = json.loads(status(settings, "--json").output)
    assert doc["state"] == "ok" and doc["exit_status"] == 0
    tables = {t["table"]: t for t in doc["tables"]}
    assert set(tables) >= set(TABLES) and tables["orders"]["freshness"] == "pass"
    assert tables["orders"]["watermark"] and 0 <= tables["orders"]["lag_minutes"] < 60
    assert tables["orders"]["last_extract"] and tables["orders"]["last_load"]
    assert tables["orders"]["pending_batches"] == tables["orders"]["failed_batches"] == []
    assert tables["customers"]["watermark"] is None and tables["customers"]["last_load"] is None


def test_a_late_table_exits_3(settings, olist_csv):
    loaded(settings, olist_csv)
    stale = (utcnow() - timedelta(hours=13)).strftime("%Y-%m-%d %H:%M:%S")
    with duckdb.connect(settings.duckdb_path) as con:  # nothing reached raw.orders for 13 hours
        con.execute(f"UPDATE raw.orders SET _loaded_at = TIMESTAMP '{stale}'")
    text = status(settings)
    assert text.exit_code == EXIT_LATE
    assert "orders: late: newest row loaded 13h ago (error after 12h)" in text.output
    assert text.output.splitlines()[-1] == "late (exit status 3)"
    doc = json.loads(status(settings, "--json").output)
    assert (doc["state"], doc["exit_status"]) == ("late", 3)
    assert {t["table"]: t["freshness"] for t in doc["tables"]}["orders"] == "error"


def test_a_failed_batch_exits_4_and_is_named_until_it_loads(settings, olist_csv):
    from loaders.sources import open_source

    loaded(settings, olist_csv)

    with open_source(settings.source_url) as db:  # one changed order: a new, small batch
        db.execute("UPDATE orders SET order_status = 'canceled' WHERE rowid = 1")
    (batch,) = pipeline.extract(settings, quiet(), "current", ["orders"])
    part = Path(settings.store_url) / batch.parts[0].path
    original = part.read_bytes()
    part.write_bytes(original[:-8] + b"\0" * 8)
    try:
        pipeline.load(settings, quiet(), ["orders"])
    except Exception:
        pass
    text = status(settings)
    assert text.exit_code == EXIT_FAILED
    assert "orders: load set aside" in text.output and "corrupted" in text.output
    assert "orders: 1 failed or set-aside batch(es) not loaded" in text.output
    assert text.output.splitlines()[-1] == "failed (exit status 4)"
    doc = json.loads(status(settings, "--json").output)
    orders = {t["table"]: t for t in doc["tables"]}["orders"]
    assert (doc["state"], doc["exit_status"]) == ("failed", 4)
    assert orders["failed_batches"] == [batch.batch_id] and orders["pending_batches"] == []
    part.write_bytes(original)  # repaired: the next load takes it, and the status is clean again
    pipeline.load(settings, quiet(), ["orders"])
    assert status(settings).exit_code == EXIT_OK


def test_unfinished_units_and_funnel_files(settings, olist_csv, tmp_path):
    """A unit that started long ago and never ended is a failure; funnel files show their rejects."""
    from olist_demo.funnel_generator import generate_funnel

    loaded(settings, olist_csv)
    generate_funnel(tmp_path / "funnel", olist_csv, scale=0.1, seed=3, years=(2017,))
    pipeline.funnel_land(settings, quiet(), sorted((tmp_path / "funnel").glob("*.csv")))
    (report,) = pipeline.funnel_convert(settings, quiet())
    started = utcnow()  # a load of sellers that started after the last one and never ended
    with duckdb.connect(settings.duckdb_path) as con:
        con.execute(
            "INSERT INTO raw._run_history VALUES ('r-killed', 0, 'load', 'sellers', 'running', "
            f"TIMESTAMP '{started:%Y-%m-%d %H:%M:%S.%f}', NULL, 0, 0, '', NULL, TIMESTAMP '{started}')"
        )
    assert collect(settings, started + timedelta(minutes=5)).exit_status == EXIT_OK  # still running
    result = collect(settings, started + timedelta(hours=4))
    sellers = {t.table: t for t in result.tables}["sellers"]
    assert sellers.problems == ["load unfinished: started 4h ago and never ended (killed?)"]
    assert result.exit_status == EXIT_FAILED
    (funnel,) = result.funnel_files
    assert (funnel.file, funnel.converted, funnel.last_run) == ("2017_funnel.csv", True, "succeeded")
    assert funnel.rows_written == report.rows_written and funnel.rows_rejected == report.rows_rejected


def test_status_without_a_warehouse_is_a_one_line_error(settings):
    result = status(settings)
    assert result.exit_code == 1 and "no DuckDB warehouse" in result.output


def test_the_last_verify_comes_from_the_verify_log_when_there_is_one(settings, olist_csv):
    loaded(settings, olist_csv)
    assert {t.table: t.last_verify for t in collect(settings).tables}["orders"] == "never"
    with duckdb.connect(settings.duckdb_path) as con:  # the table `dwh verify` writes (issue 12)
        con.execute("CREATE TABLE raw._verify_log (table_name VARCHAR, verified_at TIMESTAMP, status VARCHAR)")
        con.execute(
            "INSERT INTO raw._verify_log VALUES ('orders', TIMESTAMP '2026-01-01 00:00:00', 'differences'), "
            "('orders', TIMESTAMP '2026-01-02 00:00:00', 'equal')"
        )
    tables = {t.table: t for t in collect(settings).tables}
    assert (tables["orders"].last_verify, str(tables["orders"].last_verify_at)) == ("equal", "2026-01-02 00:00:00")
    assert tables["sellers"].last_verify == "never"
