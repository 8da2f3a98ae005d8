"""What a command shows while it runs: progress bars only on a terminal (a pseudo-terminal here),
one line per unit in cron, JSON lines with DWH_LOG_FORMAT=json."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from loaders.aws import glue_jobs

from .helpers import fill_source

DWH = str(Path(sys.executable).with_name("dwh"))
TABLES = ["orders", "sellers"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWH_")}
    return {**env, "TERM": "xterm-256color", "COLUMNS": "140", **extra}


def run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `dwh args` with stdout and stderr on a pseudo-terminal; return its exit status and
    everything the terminal received."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([DWH, *args], stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


def run_piped(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([DWH, *args], env=env, capture_output=True, text=True, timeout=300)


def _funnel_file(settings, olist_csv, tmp_path) -> Path:
    from olist_demo.funnel_generator import generate_funnel

    generate_funnel(tmp_path / "funnel", olist_csv, rows_per_file=20_000, seed=3, years=(2017,))
    return tmp_path / "funnel" / "2017_funnel.csv"


def test_progress_bars_on_a_terminal_only(settings, olist_csv, tmp_path):
    fill_source(settings, olist_csv, TABLES)
    funnel = _funnel_file(settings, olist_csv, tmp_path)
    data = ["--data-dir", str(settings.data_dir)]
    subprocess.run([DWH, *data, "funnel", "land", str(funnel)], env=_env(), check=True, capture_output=True)

    status, screen = run_on_terminal(
        [*data, "extract", "--mode", "historical", *sum([["--table", t] for t in TABLES], [])], _env()
    )
    assert status == 0, screen
    assert "extract orders" in screen and "rows/s" in screen and "━" in screen  # a bar, rows and a rate
    assert f"/{_rows(settings, 'orders'):,} rows" in screen  # against the source's estimate
    status, screen = run_on_terminal([*data, "funnel", "convert", "--force"], _env())
    assert status == 0, screen
    assert "convert 2017_funnel.csv" in screen and "━" in screen and "B/s" in screen  # bytes and a rate

    piped = run_piped([*data, "extract", "--mode", "historical", *sum([["--table", t] for t in TABLES], [])], _env())
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and "\x1b" not in piped.stdout and "\r" not in piped.stdout
    lines = [line for line in piped.stdout.splitlines() if line.strip()]
    assert [line.split()[0] for line in lines[1:]] == TABLES  # the stage line, then one line per table
    piped = run_piped([*data, "funnel", "convert", "--force"], _env())
    assert piped.stderr == "" and "━" not in piped.stdout and "2017_funnel.csv" in piped.stdout


def _rows(settings, table: str) -> int:
    from loaders.declarations import declared_tables
    from loaders.sources import open_source

    with open_source(settings.source_url) as db:
        return db.estimate_rows(declared_tables(settings.project_dir)[table])


def test_json_lines_for_every_report_line_unit_and_log_record(settings, olist_csv):
    fill_source(settings, olist_csv, TABLES)
    data = ["--data-dir", str(settings.data_dir), "--debug"]  # --debug: log records too (the SQL)
    env = _env(DWH_LOG_FORMAT="json")
    result = run_piped([*data, "extract", "--mode", "historical", *sum([["--table", t] for t in TABLES], [])], env)
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]  # every line is one JSON object
    logs = [json.loads(line) for line in result.stderr.splitlines()]
    assert logs and all({"time", "level", "logger", "message"} <= set(doc) for doc in logs)
    units = [doc for doc in out if doc.get("event") == "unit"]
    assert [(u["stage"], u["unit"], u["status"]) for u in units] == [("extract", t, "succeeded") for t in TABLES]
    assert all(u["rows"] > 0 and u["bytes"] > 0 and len(u["batch_ids"]) == 1 and u["run_id"] for u in units)
    assert {doc["run_id"] for doc in out} == {units[0]["run_id"]}
    assert any("orders" in doc["message"] and "rows" in doc["message"] for doc in out if "event" not in doc)
    # on a terminal too: JSON, and no progress bar
    status, screen = run_on_terminal([*data[:2], "extract", "--table", "sellers"], env)
    assert status == 0 and "━" not in screen
    assert all(json.loads(line) for line in screen.splitlines() if line.strip())


def test_the_glue_jobs_log_json_lines_when_asked(settings, olist_csv):
    fill_source(settings, olist_csv, ["sellers"])
    lines: list[str] = []
    argv = ["--data_dir", str(settings.data_dir), "--log_format", "json", "--tables", "sellers"]
    glue_jobs.run("extract", argv, env={}, echo=lines.append)
    docs = [json.loads(line) for line in lines]  # every line, the job's first included
    assert [(d["stage"], d["unit"]) for d in docs if d.get("event") == "unit"] == [("extract", "sellers")]
    assert docs[0]["message"].startswith("dwh extract job: warehouse duckdb")
    assert docs[-1]["message"].startswith("dwh extract job finished")
