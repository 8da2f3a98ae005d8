"""Benchmark the hourly run: does it cost what changed, not what exists? (issue 18, bench/hourly)

    nice -n 5 .venv/bin/python bench/hourly.py --scales 1 10 --runs 5

For each scale: generate the Olist CSVs (cached under bench/results/csv/), bulk-load them into
a fresh MariaDB database (`fast_source_load`), and set up one pipeline per warehouse (DuckDB, and
PostgreSQL: the engine closest to Redshift that runs here), each with its own store (one
historical extract, copied for the second warehouse), load, whole `dbt build` (not timed;
`setup_seconds` in the JSON). With --reuse, all of it is kept per scale under
bench/results/hourly-cache/ and reused by the next run (--runs 0: set up only). Then, `--runs`
times: apply the same simulated hour to the source (`olist_demo.shop_simulator.simulate_hour`
with seed 1000 + the source's hour number, the same sequence at every scale: `--orders` new
orders and `--progress` status changes), and run the stages of one `dwh run` on each warehouse,
timing each: extract (auto: current), load, build (`dbt source freshness`, then `dbt build` of
what is downstream of the new batches, its data tests on the rows of the run). Reports the
median of each stage per scale and warehouse, and whether the largest scale's median is at most
1.2 x the smallest's in every stage.

Lookbacks are 0 here (extract and dbt, as in bench/incremental.py): the source was loaded
minutes before, so the production lookbacks (15 minutes, 3 hours) would re-read all of it on the
first runs; in production they re-read a few hourly batches more, whatever the table sizes.
Results go to stdout and --json (bench/results/hourly.json); the databases are dropped unless
--keep or --reuse.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import random
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / "bench" / "results"
CACHE = RESULTS / "hourly-cache"
SEED = 42
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from loaders import pipeline  # noqa: E402
from loaders.config import Settings  # noqa: E402
from loaders.report import Reporter  # noqa: E402
from loaders.sources import open_source  # noqa: E402
from olist_demo.olist_generator import generate_olist  # noqa: E402
from olist_demo.shop_simulator import simulate_hour  # noqa: E402

STAGES = ("extract", "load", "build")
VARS = ["--vars", "{lookback_hours: 0}"]
TARGET_GROWTH = 1.2
WAREHOUSES = ("duckdb", "postgres")
_HELD: list = []  # the cache locks this process holds (released when it ends)


def csv_for(scale: float) -> Path:
    folder = RESULTS / "csv" / f"scale-{scale:g}"
    if not (folder / "product_category_name_translation.csv").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating Olist CSVs at scale {scale:g} -> {folder}", flush=True)
        generate_olist(folder, scale=scale, seed=SEED, parallel=True)
    return folder


def _tag(scale: float) -> str:
    return f"{scale:g}".replace(".", "_")


def _mysql(args: argparse.Namespace, sql: str) -> None:
    import pymysql

    conn = pymysql.connect(host=args.host, port=args.port, user=args.user, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _postgres(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def fast_source_load(args: argparse.Namespace, database: str, folder: Path) -> dict[str, float]:
    """Bulk-load the generated CSVs into `database` as fast as this server allows; seconds per table.

    The benchmark's own files are known good, so the project's checked load (`dwh source load`:
    every field checked in Python and written to a normalized copy first, about 70 % of its
    time) is skipped: each file goes straight to `LOAD DATA LOCAL INFILE` (header skipped,
    empty field = NULL as in the checked load; geolocation on a second connection), into a
    table created by the project's own DDL but without its cursor index, with `unique_checks`
    and `foreign_key_checks` off (MariaDB's bulk insert into an empty table); the cursor index
    is added after the rows. The translation
    file (a BOM, CRLF line ends, 71 rows) goes through the checked load. Raises RuntimeError
    when the server warns or stores another number of rows than the file holds.
    """
    from loaders.declarations import select_tables
    from loaders.sources.bootstrap import load_folder
    from loaders.sources.bootstrap.mysql import MySQLBootstrap

    class _LateIndex(MySQLBootstrap):
        def after_create(self, table) -> None:  # the cursor index comes after the rows
            pass

    def load(tables: list) -> dict[str, float]:
        seconds: dict[str, float] = {}
        with open_source(f"mysql://{args.user}@{args.host}:{args.port}/{database}") as db:
            fast, late = MySQLBootstrap(db), _LateIndex(db)
            q = db.quote
            cur = db._conn.cursor()
            cur.execute(
                "SET SESSION unique_checks = 0, foreign_key_checks = 0, "
                "sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION'"
            )
            for table in tables:
                started = time.perf_counter()
                path = folder / table.csv_file
                if table.name == "product_category_name_translation":
                    load_folder(db, [table], folder)
                    seconds[table.name] = time.perf_counter() - started
                    continue
                late.create_table(table)
                variables = [f"@v{i}" for i in range(len(table.csv_columns))]
                assignments = [
                    f"{q(c.name)} = IF(LENGTH({v}) = 0, NULL, {v})"
                    for v, c in zip(variables, table.csv_columns, strict=True)
                ]
                sql = (
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {q(table.name)} CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                    "LINES TERMINATED BY '\\n' IGNORE 1 LINES "
                    f"({', '.join(variables)}) SET {', '.join(assignments)}"
                )
                cur.execute("START TRANSACTION")
                stored = cur.execute(sql, (str(path),))
                cur.execute("SHOW WARNINGS LIMIT 3")
                warnings = cur.fetchall()
                cur.execute("COMMIT")
                if warnings:
                    raise RuntimeError(f"{path.name}: LOAD DATA warned: {warnings}")
                fast.after_create(table)
                cur.execute(f"SELECT COUNT(*) FROM {q(table.name)}")
                (count,) = cur.fetchone()
                if count != stored:
                    raise RuntimeError(f"{path.name}: {stored} rows loaded but {count} in {table.name}")
                seconds[table.name] = time.perf_counter() - started
            cur.close()
        return seconds

    # two connections: geolocation (half the rows) beside the other tables
    tables = select_tables(PROJECT_DIR, None)
    big = [t for t in tables if t.name == "geolocation"]
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(load, [big, [t for t in tables if t not in big]]))
    return {name: sec for part in done for name, sec in part.items()}


def _cache_dir(scale: float) -> Path:
    return CACHE / f"scale-{_tag(scale)}-seed{SEED}"


def _lock(work: Path, name: str, wait: bool = True):
    """An exclusive lock on `work/lock-<name>`: the open file (keep it to hold the lock), or
    None when `wait` is false and another process holds it."""
    handle = open(work / f"lock-{name}", "w")  # noqa: SIM115  (held as long as the handle lives)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not wait:
            handle.close()
            return None
        print(f"waiting for another bench/hourly.py run to release {work.name}/lock-{name}", flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def _meta(folder: Path) -> dict:
    path = folder / "meta.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _update_meta(folder: Path, change) -> dict:
    """Apply `change(meta)` to meta.json under its own lock (several runs may share a cache: each
    changes only its own keys) and return the result."""
    with open(folder / "lock-meta", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        meta = _meta(folder)
        change(meta)
        (folder / "meta.json.tmp").write_text(json.dumps(meta, indent=2))
        (folder / "meta.json.tmp").replace(folder / "meta.json")
    return meta


def setup(args: argparse.Namespace, scale: float, work: Path) -> tuple[dict[str, Settings], dict]:
    """A loaded MariaDB source and, per warehouse, a store and warehouse after the first run.

    Returns the settings per warehouse and the cache's metadata (`hours`: simulated hours the
    source has had; `synced`: per warehouse, the hours its store and warehouse have caught up
    with; `setup_seconds`: what each setup step took when it ran). With --reuse, a source and
    warehouses kept by an earlier run at this scale (and seed) are used as they are: a warehouse
    behind the source catches up in an untimed hourly run before the timed ones, so a later run's
    hours are ordinary hourly runs. Each step is marked done in meta.json only once it finished,
    so an interrupted setup redoes the unfinished step next time. Locks (files `lock-*`): the
    source while it is set up or changed by timed runs, each warehouse while a run uses it; so a
    second warehouse can be set up (--runs 0) while another run times the first.
    """
    database = f"dwh_hourly_s{_tag(scale)}"
    source_url = f"mysql://{args.user}@{args.host}:{args.port}/{database}"
    quiet = Reporter(echo=lambda line: None)
    base = Settings(data_dir=work / "source", source_url=source_url, lookback_seconds=0)
    work.mkdir(parents=True, exist_ok=True)
    source_lock = _lock(work, "source")
    if not args.reuse:  # afresh: everything but the locks goes
        for old in work.iterdir():
            if not old.name.startswith("lock-"):
                shutil.rmtree(old) if old.is_dir() else old.unlink()
    # a cache from before `synced` was kept: its warehouses were in step with the source
    meta = _update_meta(
        work,
        lambda m: m.setdefault("synced", {w: m.get("hours", 0) for w in WAREHOUSES if m.get(f"{w}_done")}),
    )
    if not meta.get("source_done"):
        setup_seconds: dict = {}
        for leftover in WAREHOUSES:
            shutil.rmtree(work / leftover, ignore_errors=True)
        started = time.perf_counter()
        csv = csv_for(scale)
        setup_seconds["generate_csv"] = time.perf_counter() - started
        _mysql(args, f"DROP DATABASE IF EXISTS `{database}`")
        _mysql(args, f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        started = time.perf_counter()
        setup_seconds["source_load_tables"] = fast_source_load(args, database, csv)
        setup_seconds["source_load"] = time.perf_counter() - started
        fresh = {"setup_seconds": setup_seconds, "hours": 0, "synced": {}, "source_done": True}
        meta = _update_meta(work, lambda m: (m.clear(), m.update(fresh)))
        print(f"scale {scale:g}: MariaDB source loaded ({setup_seconds['source_load']:.0f}s)", flush=True)
    else:
        print(f"scale {scale:g}: reusing MariaDB {database} and {work} ({meta['hours']} hours applied)", flush=True)
    if args.runs:
        _HELD.append(source_lock)  # the timed hours change the source
    else:
        source_lock.close()
    twins = {}
    for warehouse in args.warehouses:
        data_dir = work / warehouse
        s = base.with_(data_dir=data_dir, store_url=str(data_dir / "store"), duckdb_path="", warehouse=warehouse)
        if warehouse == "postgres":
            s = s.with_(pg_database=database)
        twins[warehouse] = s
        _HELD.append(_lock(work, warehouse))
        if _meta(work).get(f"{warehouse}_done"):
            continue
        shutil.rmtree(data_dir, ignore_errors=True)
        if warehouse == "postgres":
            _postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            _postgres(f'CREATE DATABASE "{database}"')
        steps: dict[str, float] = {}
        started = time.perf_counter()
        for other in WAREHOUSES:  # one historical extract per scale: copy a finished store if free
            held = _lock(work, other, wait=False) if other != warehouse and _meta(work).get(f"{other}_done") else None
            if held:
                synced = _meta(work)["synced"][other]
                shutil.copytree(work / other / "store", data_dir / "store")
                held.close()
                steps["copy_store"] = time.perf_counter() - started
                break
        else:
            synced = _meta(work)["hours"]
            pipeline.extract(s, quiet, "historical")
            steps["historical_extract"] = time.perf_counter() - started
        started = time.perf_counter()
        pipeline.load(s, quiet)
        steps["load"] = time.perf_counter() - started
        started = time.perf_counter()
        pipeline.build(s, quiet, VARS)
        steps["whole_build"] = time.perf_counter() - started

        def done(m: dict, warehouse: str = warehouse, steps: dict = steps, synced: int = synced) -> None:
            m[f"{warehouse}_done"] = True
            m["setup_seconds"][warehouse] = steps
            m["synced"][warehouse] = synced

        _update_meta(work, done)
        print(
            f"scale {scale:g}: {warehouse} first run: " + ", ".join(f"{k} {v:.0f}s" for k, v in steps.items()),
            flush=True,
        )
    return twins, _meta(work)


def _dbt_profile(s: Settings, since: float) -> dict:
    """What the `dbt build` of this warehouse since `since` (epoch seconds) spent, from its
    run_results.json: dbt's elapsed seconds, the nodes, their summed execution time by kind, the
    five slowest nodes and every node's execution time (seconds, by unique id); empty when no
    build ran."""
    path = s.data_dir / "dbt" / "target" / "run_results.json"
    if not path.exists() or path.stat().st_mtime < since:
        return {}
    doc = json.loads(path.read_text())
    results = doc.get("results", [])
    kinds: dict[str, float] = {}
    for r in results:
        kind = r["unique_id"].split(".", 1)[0]
        kinds[kind] = kinds.get(kind, 0.0) + r["execution_time"]
    slowest = sorted(results, key=lambda r: -r["execution_time"])[:5]
    return {
        "elapsed": doc.get("elapsed_time"),
        "nodes": len(results),
        "seconds_by_kind": kinds,
        "slowest": [(r["unique_id"], round(r["execution_time"], 2)) for r in slowest],
        "node_seconds": {r["unique_id"]: round(r["execution_time"], 3) for r in results},
    }


def hourly_run(s: Settings) -> dict[str, Any]:
    """The stages of one `dwh run`, each timed (seconds)."""
    quiet = Reporter(echo=lambda line: None)
    times: dict[str, Any] = {}
    started = time.perf_counter()
    batches = pipeline.extract(s, quiet, "auto")
    times["extract"] = time.perf_counter() - started
    started = time.perf_counter()
    loads = pipeline.load(s, quiet)
    times["load"] = time.perf_counter() - started
    started, since = time.perf_counter(), time.time()
    pipeline.build(s, quiet, VARS)
    times["build"] = time.perf_counter() - started
    times["dbt_build"] = _dbt_profile(s, since)
    times["rows_extracted"] = sum(b.rows for b in batches)
    times["rows_inserted"] = sum(r.rows_inserted for r in loads if r.status == "loaded")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--runs", type=int, default=5, help="simulated hours (runs) per scale")
    parser.add_argument("--orders", type=int, default=200, help="new orders per simulated hour")
    parser.add_argument("--progress", type=int, default=400, help="status changes per simulated hour")
    parser.add_argument("--warehouses", nargs="+", default=list(WAREHOUSES), choices=WAREHOUSES)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    parser.add_argument("--keep", action="store_true", help="keep the databases and folders")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"keep the source and warehouses per scale in {CACHE.relative_to(PROJECT_DIR)}/scale-<scale>-seed{SEED}/ "
        "and reuse them on the next run (setup only where missing); --runs 0 only sets up",
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "hourly.json", help="where the results go")
    args = parser.parse_args()

    results: dict = {
        "command": " ".join(sys.argv),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": f"{platform.node()} {platform.machine()}",
        "orders_per_hour": args.orders,
        "status_changes_per_hour": args.progress,
        "runs": args.runs,
        "load_average_start": os.getloadavg(),
        "scales": {},
    }
    prepared: dict[float, tuple] = {}
    for scale in args.scales:  # every scale set up first, so the timed hours can alternate
        work = _cache_dir(scale) if args.reuse else RESULTS / f"hourly-scale-{_tag(scale)}"
        twins, meta = setup(args, scale, work)
        for warehouse, s in twins.items() if args.runs else ():
            behind = meta["hours"] - meta["synced"][warehouse]
            if behind:  # the source had hours this warehouse has not seen: one untimed run
                print(f"scale {scale:g}: {warehouse} catches up {behind} hour(s) (not timed)", flush=True)
                hourly_run(s)
                meta = _update_meta(work, lambda m, w=warehouse: m["synced"].__setitem__(w, m["hours"]))
        prepared[scale] = (work, twins, meta, meta["hours"], {w: [] for w in twins})

    if args.runs:
        # dbt's modules once, before the first timed hour: otherwise whichever scale goes first
        # pays their import (10-30 s on a busy host) in its first build
        import dbt.cli.main  # noqa: F401

    for run in range(args.runs):
        # scales in turn within each run (reversed every other run), so a change in the shared
        # machine's load falls on every scale alike
        order = args.scales if run % 2 == 0 else list(reversed(args.scales))
        for scale in order:
            work, twins, meta, _, runs = prepared[scale]
            hour = meta["hours"]
            with open_source(next(iter(twins.values())).source_url) as db:
                # the same sequence of hours at every scale: seed 1000 + the source's hour number
                simulate_hour(db, random.Random(1000 + hour), args.orders, args.progress)
            for warehouse, s in twins.items():
                runs[warehouse].append({**hourly_run(s), "hour": hour, "load_average": os.getloadavg()[0]})
                last = runs[warehouse][-1]
                print(
                    f"scale {scale:g} {warehouse:<8} run {run + 1} (hour {hour}): "
                    + "  ".join(f"{stage} {last[stage]:.2f}s" for stage in STAGES)
                    + f"  ({last['rows_extracted']:.0f} rows extracted, {last['rows_inserted']:.0f} inserted;"
                    f" load average {last['load_average']:.1f})",
                    flush=True,
                )

            def advanced(m: dict, hour: int = hour, twins: dict = twins) -> None:
                m["hours"] = hour + 1
                m["synced"].update(dict.fromkeys(twins, hour + 1))

            prepared[scale] = (work, twins, _update_meta(work, advanced), *prepared[scale][3:])

    for scale, (work, twins, meta, first_hour, runs) in prepared.items():
        results["scales"][f"{scale:g}"] = {
            "setup_seconds": meta["setup_seconds"],
            "hours": [first_hour, meta["hours"]],
            **{
                w: {
                    "median": {stage: statistics.median(r[stage] for r in rs) for stage in STAGES} if rs else {},
                    "runs": rs,
                }
                for w, rs in runs.items()
            },
        }
        if not args.keep and not args.reuse:
            database = f"dwh_hourly_s{_tag(scale)}"
            _mysql(args, f"DROP DATABASE IF EXISTS `{database}`")
            if "postgres" in twins:
                _postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            shutil.rmtree(work, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))

    if args.runs == 0:
        print("set up only (--runs 0)")
        return 0
    print(f"\nmedian seconds per stage of one hourly run ({args.runs} runs, {args.orders} new orders/hour)")
    print(f"{'warehouse':<10}{'scale':>7}" + "".join(f"{stage:>10}" for stage in STAGES))
    met = True
    small, large = f"{min(args.scales):g}", f"{max(args.scales):g}"
    for warehouse in args.warehouses:
        for scale in args.scales:
            median = results["scales"][f"{scale:g}"][warehouse]["median"]
            print(f"{warehouse:<10}{scale:>7g}" + "".join(f"{median[stage]:>9.2f}s" for stage in STAGES))
        growth = {
            stage: results["scales"][large][warehouse]["median"][stage]
            / results["scales"][small][warehouse]["median"][stage]
            for stage in STAGES
        }
        results.setdefault("growth", {})[warehouse] = growth
        verdict = {stage: g <= TARGET_GROWTH for stage, g in growth.items()}
        met &= all(verdict.values())
        print(
            f"{warehouse:<10}{'x':>7}"
            + "".join(f"{growth[stage]:>9.2f}x" for stage in STAGES)
            + f"   scale {large} / scale {small}: "
            + ", ".join(f"{stage} {'met' if ok else 'NOT met'}" for stage, ok in verdict.items())
        )
    results["target_met"] = met
    results["load_average_end"] = os.getloadavg()
    args.json.write_text(json.dumps(results, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
