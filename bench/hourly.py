"""Benchmark the hourly run: does it cost what changed, not what exists? (issue 18, bench/hourly)

    nice -n 5 .venv/bin/python bench/hourly.py --scales 1 10 --runs 5

For each scale: generate the Olist CSVs (cached under bench/results/csv/), bulk-load them into
a fresh MariaDB database, and set up one pipeline per warehouse (DuckDB, and PostgreSQL: the
engine closest to Redshift that runs here), each with its own store: historical extract, load,
whole `dbt build` (not timed). Then, `--runs` times: apply the same simulated hour to the source
(`olist_demo.shop_simulator.simulate_hour` with the same seed at every scale: `--orders` new
orders and `--progress` status changes), and run the stages of one `dwh run` on each warehouse,
timing each: extract (auto: current), load, build (`dbt source freshness`, then `dbt build` of
what is downstream of the new batches, its data tests on the rows of the run). Reports the
median of each stage per scale and warehouse, and whether the largest scale's median is at most
1.2 x the smallest's in every stage.

Lookbacks are 0 here (extract and dbt, as in bench/incremental.py): the source was loaded
minutes before, so the production lookbacks (15 minutes, 3 hours) would re-read all of it on the
first runs; in production they re-read a few hourly batches more, whatever the table sizes.
Results go to stdout and bench/results/hourly.json; the databases are dropped unless --keep.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / "bench" / "results"
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


def csv_for(scale: float) -> Path:
    folder = RESULTS / "csv" / f"scale-{scale:g}"
    if not (folder / "product_category_name_translation.csv").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating Olist CSVs at scale {scale:g} -> {folder}", flush=True)
        generate_olist(folder, scale=scale, seed=42)
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


def setup(args: argparse.Namespace, scale: float, work: Path) -> dict[str, Settings]:
    """A loaded MariaDB source and, per warehouse, a store and warehouse after the first run."""
    database = f"dwh_hourly_s{_tag(scale)}"
    _mysql(args, f"DROP DATABASE IF EXISTS `{database}`")
    _mysql(args, f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    source_url = f"mysql://{args.user}@{args.host}:{args.port}/{database}"
    quiet = Reporter(echo=lambda line: None)
    base = Settings(data_dir=work / "source", source_url=source_url, lookback_seconds=0)
    started = time.perf_counter()
    pipeline.load_source(base, csv_for(scale), quiet)
    print(f"scale {scale:g}: MariaDB source loaded ({time.perf_counter() - started:.0f}s)", flush=True)
    twins = {}
    for warehouse in args.warehouses:
        data_dir = work / warehouse
        s = base.with_(data_dir=data_dir, store_url=str(data_dir / "store"), duckdb_path="", warehouse=warehouse)
        if warehouse == "postgres":
            s = s.with_(pg_database=database)
            _postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            _postgres(f'CREATE DATABASE "{database}"')
        started = time.perf_counter()
        pipeline.extract(s, quiet, "historical")
        pipeline.load(s, quiet)
        pipeline.build(s, quiet, VARS)
        print(f"scale {scale:g}: {warehouse} first run ({time.perf_counter() - started:.0f}s)", flush=True)
        twins[warehouse] = s
    return twins


def hourly_run(s: Settings) -> dict[str, float]:
    """The stages of one `dwh run`, each timed (seconds)."""
    quiet = Reporter(echo=lambda line: None)
    times = {}
    started = time.perf_counter()
    batches = pipeline.extract(s, quiet, "auto")
    times["extract"] = time.perf_counter() - started
    started = time.perf_counter()
    loads = pipeline.load(s, quiet)
    times["load"] = time.perf_counter() - started
    started = time.perf_counter()
    pipeline.build(s, quiet, VARS)
    times["build"] = time.perf_counter() - started
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
    args = parser.parse_args()

    results: dict = {
        "command": " ".join(sys.argv),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": f"{platform.node()} {platform.machine()}",
        "orders_per_hour": args.orders,
        "status_changes_per_hour": args.progress,
        "runs": args.runs,
        "scales": {},
    }
    for scale in args.scales:
        work = RESULTS / f"hourly-scale-{_tag(scale)}"
        shutil.rmtree(work, ignore_errors=True)
        twins = setup(args, scale, work)
        runs: dict[str, list[dict[str, float]]] = {w: [] for w in twins}
        for run in range(args.runs):
            with open_source(next(iter(twins.values())).source_url) as db:
                # the same hour at every scale: the same seed per run
                simulate_hour(db, random.Random(1000 + run), args.orders, args.progress)
            for warehouse, s in twins.items():
                runs[warehouse].append(hourly_run(s))
                last = runs[warehouse][-1]
                print(
                    f"scale {scale:g} {warehouse:<8} run {run + 1}: "
                    + "  ".join(f"{stage} {last[stage]:.2f}s" for stage in STAGES)
                    + f"  ({last['rows_extracted']:.0f} rows extracted, {last['rows_inserted']:.0f} inserted)",
                    flush=True,
                )
        results["scales"][f"{scale:g}"] = {
            w: {
                "median": {stage: statistics.median(r[stage] for r in rs) for stage in STAGES},
                "runs": rs,
            }
            for w, rs in runs.items()
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "hourly.json").write_text(json.dumps(results, indent=2))  # kept if a later scale fails
        if not args.keep:
            database = f"dwh_hourly_s{_tag(scale)}"
            _mysql(args, f"DROP DATABASE IF EXISTS `{database}`")
            if "postgres" in twins:
                _postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            shutil.rmtree(work, ignore_errors=True)

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
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hourly.json").write_text(json.dumps(results, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
