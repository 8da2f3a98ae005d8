"""Benchmark `dwh load` with tables one after another against tables in parallel (issue 18).

    nice -n 10 .venv/bin/python bench/load.py --scale 1 --repeat 2 --lanes 1 2 3

Setup (cached under bench/results/load-cache/scale-<s>/ and reused): the Olist CSVs (shared with
bench/hourly.py), a MariaDB source `dwh_parload_s<scale>` bulk-loaded with
`hourly.fast_source_load`, one historical extract into `store-historical/`, then `--hours`
simulated hours (seeded) applied to the source and extracted (current) into `store-hourly/`
(a copy of the historical store plus one small batch per table and hour).

Timed, per warehouse (PostgreSQL: a fresh database `dwh_parload_bench` per run; DuckDB: a fresh
file), `--repeat` times, alternating the lane counts (1, 2, 3, 1, 2, 3, ...) so a change of the
host's load hits them alike:
- historical: every table's first batch (`store-historical`) into an empty warehouse;
- hourly: the historical load done once, untimed, kept as a template (PostgreSQL: `CREATE
  DATABASE ... TEMPLATE`; DuckDB: a file copy), then the `--hours` hourly batches of every table
  loaded into a copy of it (the historical batches are skipped by the load log, as in a real run).
`lanes` 1 is `load_pending_batches` as `dwh load` runs it; more lanes are that many connections,
each taking the next table in declared order and loading its batches in order, one transaction
per batch (`load_pending_batches(..., lanes=N)`). `uptime` load averages are printed at the
start and the end. Results: stdout and --json (bench/results/load.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / "bench" / "results"
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))
sys.path.insert(0, str(PROJECT_DIR / "bench"))

from hourly import _mysql, _postgres, _tag, csv_for, fast_source_load  # noqa: E402
from loaders import pipeline  # noqa: E402
from loaders.config import Settings  # noqa: E402
from loaders.declarations import select_tables  # noqa: E402
from loaders.load import load_pending_batches  # noqa: E402
from loaders.report import Reporter  # noqa: E402
from loaders.sources import open_source  # noqa: E402
from loaders.store import ObjectStore  # noqa: E402
from loaders.warehouses import open_warehouse  # noqa: E402
from olist_demo.shop_simulator import simulate_hour  # noqa: E402

BENCH_DB = "dwh_parload_bench"
TEMPLATE_DB = "dwh_parload_template"


def uptime() -> str:
    return "load average {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def setup(args: argparse.Namespace) -> Path:
    """The cached source and the two stores; returns the cache folder."""
    work = RESULTS / "load-cache" / f"scale-{_tag(args.scale)}"
    meta_path = work / "meta.json"
    if meta_path.exists():
        return work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    database = f"dwh_parload_s{_tag(args.scale)}"
    conn: Any = SimpleNamespace(host="127.0.0.1", port=3306, user="root")
    _mysql(conn, f"DROP DATABASE IF EXISTS `{database}`")
    _mysql(conn, f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    fast_source_load(conn, database, csv_for(args.scale))
    quiet = Reporter(echo=lambda line: None)
    source_url = f"mysql://root@127.0.0.1:3306/{database}"
    s = Settings(data_dir=work, source_url=source_url, lookback_seconds=0, store_url=str(work / "store-historical"))
    started = time.perf_counter()
    pipeline.extract(s, quiet, "historical")
    print(f"historical extract {time.perf_counter() - started:.0f}s", flush=True)
    shutil.copytree(work / "store-historical", work / "store-hourly")
    hourly = s.with_(store_url=str(work / "store-hourly"))
    for hour in range(args.hours):
        with open_source(source_url) as db:
            simulate_hour(db, random.Random(1000 + hour), args.orders, args.progress)
        pipeline.extract(hourly, quiet, "current")
    meta_path.write_text(json.dumps({"scale": args.scale, "hours": args.hours}))
    _mysql(conn, f"DROP DATABASE IF EXISTS `{database}`")
    return work


def settings_for(warehouse: str, work: Path, store: str, db: str) -> Settings:
    return Settings(
        data_dir=work,
        warehouse=warehouse,  # type: ignore[arg-type]  # one of WarehouseName, from the --warehouses choices
        store_url=str(work / store),
        pg_database=db,
        duckdb_path=str(work / f"{db}.duckdb"),
    )


def fresh(warehouse: str, work: Path, db: str, template: str | None = None) -> None:
    if warehouse == "postgres":
        _postgres(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        _postgres(f'CREATE DATABASE "{db}"' + (f' TEMPLATE "{template}"' if template else ""))
    else:
        path = work / f"{db}.duckdb"
        path.unlink(missing_ok=True)
        if template:
            shutil.copy(work / f"{template}.duckdb", path)


def _backend_cpu(wh: Any) -> float:
    """CPU seconds (user + system) the PostgreSQL backend of `wh`'s connection has used so far."""
    (pid,) = wh.execute("SELECT pg_backend_pid()")[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_load(s: Settings, lanes: int) -> dict:
    """One load of every pending batch: wall seconds, batches loaded, seconds per table (the sum
    of its batches' load times), CPU seconds of this process and (one lane on PostgreSQL) of the
    server backend that did the work."""
    store = ObjectStore(s.store_url, s)
    tables = select_tables(s.project_dir, None)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    server = None
    with open_warehouse(s, store) as wh:
        backend = _backend_cpu(wh) if s.warehouse == "postgres" else 0.0
        reports = load_pending_batches(wh, tables, at_once=lanes)
        if s.warehouse == "postgres" and lanes == 1:
            server = round(_backend_cpu(wh) - backend, 2)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    per_table: dict[str, float] = {}
    for r in reports:
        if r.status == "loaded":
            per_table[r.table] = round(per_table.get(r.table, 0.0) + r.seconds, 2)
    return {
        "seconds": round(seconds, 3),
        "batches": sum(r.status == "loaded" for r in reports),
        "client_cpu": round(after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, 2),
        "server_cpu": server,
        "tables": per_table,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--warehouses", nargs="+", default=["postgres", "duckdb"], choices=["postgres", "duckdb"])
    parser.add_argument("--kinds", nargs="+", default=["historical", "hourly"], choices=["historical", "hourly"])
    parser.add_argument("--hours", type=int, default=1, help="simulated hours in the hourly store")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--progress", type=int, default=400)
    parser.add_argument("--json", type=Path, default=RESULTS / "load.json")
    args = parser.parse_args()
    print(f"start: {uptime()}", flush=True)
    work = setup(args)
    results: dict = {"scale": args.scale, "start": uptime(), "runs": []}
    for warehouse in args.warehouses:
        for kind in args.kinds:
            if kind == "hourly":  # the historical load once, as the template of every timed run
                fresh(warehouse, work, TEMPLATE_DB)
                timed_load(settings_for(warehouse, work, "store-historical", TEMPLATE_DB), 1)
            for rep in range(args.repeat):
                for lanes in args.lanes:
                    fresh(warehouse, work, BENCH_DB, TEMPLATE_DB if kind == "hourly" else None)
                    store = "store-historical" if kind == "historical" else "store-hourly"
                    row = {"warehouse": warehouse, "kind": kind, "lanes": lanes, "rep": rep}
                    row |= timed_load(settings_for(warehouse, work, store, BENCH_DB), lanes)
                    row["loadavg"] = os.getloadavg()[0]
                    results["runs"].append(row)
                    print(json.dumps(row), flush=True)
            for lanes in args.lanes:
                times = [
                    r["seconds"]
                    for r in results["runs"]
                    if (r["warehouse"], r["kind"], r["lanes"]) == (warehouse, kind, lanes)
                ]
                print(f"{warehouse:<8} {kind:<10} lanes {lanes}: median {statistics.median(times):7.2f}s  {times}")
        if warehouse == "postgres":
            _postgres(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            _postgres(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
    results["end"] = uptime()
    print(f"end: {uptime()}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
