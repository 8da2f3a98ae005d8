"""Benchmark the incremental star-schema build against a full refresh (issue: bench/incremental).

    .venv/bin/python bench/incremental.py --scale 10

At the given scale, on the embedded default (SQLite -> local folder -> DuckDB): load the
source, extract and load everything, run a full-refresh `dbt build`; then change 1% of the
orders in the source (status moves on, delivery timestamps set), extract and load them, and
run the incremental `dbt build`. Reports, from dbt's run_results.json, the summed execution
time of the model nodes of each build (tests and dbt's own start-up excluded), their ratio,
both wall times, and the slowest models of each build.

The extract lookback and the facts' lookback are set to 0 here: the whole source was loaded
minutes before, so any lookback would re-read all of it. In production, the lookbacks re-read
the last 15 minutes (extract) and 3 hours (facts) of changes: a few hourly batches more.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
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

VARS = ["--vars", "{lookback_hours: 0}"]
TARGET_RATIO = 0.10


def csv_for(scale: float) -> Path:
    folder = RESULTS / "csv" / f"scale-{scale:g}"
    if not (folder / "product_category_name_translation.csv").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating Olist CSVs at scale {scale:g} -> {folder}", flush=True)
        generate_olist(folder, scale=scale, seed=42)
    return folder


def timed_build(settings: Settings, args: list[str]) -> dict:
    """The build `dwh build` runs: the whole project for --full-refresh; otherwise only what is
    downstream of the batches loaded since the last build (loaders/build/scope.py)."""
    quiet = Reporter(echo=lambda line: None)
    started = time.perf_counter()
    report = pipeline.build(settings, quiet, [*args, *VARS], check_freshness=False)
    wall = time.perf_counter() - started
    results = json.loads((settings.data_dir / "dbt" / "target" / "run_results.json").read_text())
    models = {
        r["unique_id"].split(".")[-1]: r["execution_time"]
        for r in results["results"]
        if r["unique_id"].startswith("model.")
    }
    tests = sum(r["execution_time"] for r in results["results"] if not r["unique_id"].startswith("model."))
    return {
        "wall_seconds": wall,
        "model_seconds": sum(models.values()),
        "test_seconds": tests,
        "models": dict(sorted(models.items(), key=lambda kv: -kv[1])),
        "nodes": len(report.results),
    }


def change_orders(settings: Settings, share: float, seed: int = 1) -> int:
    """Move `share` of the orders one step on: approved -> shipped -> delivered, others canceled."""
    with open_source(settings.source_url) as db:
        ids = [r[0] for r in db.execute("SELECT order_id FROM orders")]
        chosen = random.Random(seed).sample(ids, max(1, int(len(ids) * share)))
        with db.transaction():
            cur = db._conn.cursor()  # set-based: the change itself is not what is measured
            cur.execute("CREATE TEMP TABLE changed (order_id TEXT PRIMARY KEY, with_review INTEGER)")
            cur.executemany(
                "INSERT INTO changed VALUES (?, ?)", [(order_id, n % 4 == 0) for n, order_id in enumerate(chosen)]
            )
            cur.execute(
                "UPDATE orders SET order_status = CASE order_status WHEN 'delivered' THEN 'delivered' "
                "WHEN 'shipped' THEN 'delivered' ELSE 'canceled' END, "
                "order_delivered_customer_date = coalesce(order_delivered_customer_date, "
                "datetime(order_purchase_timestamp, '+9 days')) "
                "WHERE order_id IN (SELECT order_id FROM changed)"
            )
            # a quarter of them get their review score revised, as happens in the shop
            cur.execute(
                "UPDATE order_reviews SET review_score = 1 + (review_score % 5) "
                "WHERE order_id IN (SELECT order_id FROM changed WHERE with_review)"
            )
            cur.execute("DROP TABLE changed")
    return len(chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--change-share", type=float, default=0.01)
    parser.add_argument("--keep", action="store_true", help="keep the source, lake and warehouse")
    parser.add_argument(
        "--reuse-source",
        action="store_true",
        help="reuse the SQLite source a --keep run left (skips the slow bulk load)",
    )
    args = parser.parse_args()

    work = RESULTS / f"incremental-scale-{args.scale:g}"
    source = work / "olist.sqlite"
    if args.reuse_source and source.exists():
        for leftover in ("lake", "dbt", "warehouse.duckdb", "warehouse.duckdb.wal"):
            path = work / leftover
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    settings = Settings(data_dir=work, lookback_seconds=0, scale=args.scale)
    quiet = Reporter(echo=lambda line: None)
    step = time.perf_counter()
    if not (args.reuse_source and source.exists()):
        pipeline.load_source(settings, csv_for(args.scale), quiet)
        print(f"source loaded ({time.perf_counter() - step:.0f}s)", flush=True)
    step = time.perf_counter()
    pipeline.extract(settings, quiet, "historical")
    pipeline.load(settings, quiet)
    print(f"historical extract + load ({time.perf_counter() - step:.0f}s)", flush=True)

    full = timed_build(settings, ["--full-refresh"])
    print(f"full refresh: models {full['model_seconds']:.2f}s, wall {full['wall_seconds']:.2f}s", flush=True)
    changed = change_orders(settings, args.change_share)
    step = time.perf_counter()
    batches = pipeline.extract(settings, quiet, "current")
    pipeline.load(settings, quiet)
    print(
        f"changed {changed} orders; incremental extract + load "
        f"({sum(b.rows for b in batches)} rows, {time.perf_counter() - step:.1f}s)",
        flush=True,
    )
    incremental = timed_build(settings, [])
    ratio = incremental["model_seconds"] / full["model_seconds"]

    print(f"\nscale {args.scale:g}: {changed} of the orders changed ({args.change_share:.0%})")
    print(f"{'build':<14}{'model time':>12}{'tests':>10}{'wall':>10}")
    for name, r in (("full refresh", full), ("incremental", incremental)):
        print(f"{name:<14}{r['model_seconds']:>11.2f}s{r['test_seconds']:>9.2f}s{r['wall_seconds']:>9.2f}s")
    print(
        f"model time ratio incremental / full = {ratio:.1%} (target <= {TARGET_RATIO:.0%}: "
        f"{'met' if ratio <= TARGET_RATIO else 'NOT met'})"
    )
    for name, r in (("full refresh", full), ("incremental", incremental)):
        top = ", ".join(f"{m} {s:.2f}s" for m, s in list(r["models"].items())[:6])
        print(f"slowest models, {name}: {top}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "incremental.json").write_text(
        json.dumps(
            {"scale": args.scale, "changed_orders": changed, "full": full, "incremental": incremental, "ratio": ratio},
            indent=2,
        )
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
