"""Benchmark binary-log capture against cursor capture over the same changes (issue 13: bench/cdc).

    nice -n 5 .venv/bin/python bench/cdc.py --scale 1 --changes 10000 100000

Starts a private MariaDB with a row-based binary log (olist_demo/mariadb_server.py), loads
`orders` and `order_items` at the given scale, and gives each mode its own store and DuckDB
warehouse, seeded by its own historical extract (cursor: the parallel key-range read; binlog: the
consistent snapshot that records its log position). Then, for each count in --changes (applied
one after the other), it applies that many changes to the source, a mix of inserts (an order with
one item), updates (order status; item price) and deletes (an order and its items), committed in
transactions of 100 changes, and runs each mode once over them:

- extract: `dwh extract --table orders --table order_items` in its own process under GNU time
  (wall seconds, that process's peak RSS); rows/s = rows written to the batches / wall seconds;
- load and `dbt build --select stg_olist__orders stg_olist__order_items` in this process;
- commit-to-staging: from the last change's commit to the end of that mode's build, when the run
  starts right after it (extract + load + build of the two staging models): how old a change is
  once staging shows it, at most one run after its commit;
- staging equals the source (binlog) or not (cursor misses the deletes): counted, not assumed.

The cursor mode runs with DWH_LOOKBACK_SECONDS=0: its historical extract was minutes before, so
the default 15-minute lookback would read the whole bulk-loaded table again. Results go to
bench/results/cdc-<time>.json and are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / "bench" / "results"
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from gnu_time import run_timed  # noqa: E402  (bench/ is the script's own folder)
from loaders import pipeline  # noqa: E402
from loaders.config import Capture, Settings  # noqa: E402
from loaders.declarations import select_tables  # noqa: E402
from loaders.report import Reporter  # noqa: E402
from loaders.sources import open_source  # noqa: E402
from loaders.sources.bootstrap import load_folder  # noqa: E402
from olist_demo.mariadb_server import BinlogServer  # noqa: E402
from olist_demo.olist_generator import generate_olist  # noqa: E402

TABLES = ["orders", "order_items"]
CAPTURES: tuple[Capture, ...] = ("cursor", "binlog")
MODELS = "stg_olist__orders stg_olist__order_items"
STATUSES = ["approved", "invoiced", "processing", "shipped", "delivered", "canceled"]


def csv_for(scale: float) -> Path:
    folder = RESULTS / "csv" / f"scale-{scale:g}"
    if not (folder / "product_category_name_translation.csv").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating Olist CSVs at scale {scale:g} -> {folder}", flush=True)
        generate_olist(folder, scale=scale, seed=42)
    return folder


def apply_changes(server: BinlogServer, database: str, count: int, seed: int) -> dict:
    """`count` changes: 20% inserts (order + item: 2 rows), 60% updates (order status, or all
    item prices of an order), 20% deletes (an order and its items); 100 changes a transaction."""
    rng = random.Random(seed)
    conn = server.connect(database)
    conn.autocommit(False)
    kinds = {"insert": 0, "update": 0, "delete": 0}
    with conn.cursor() as cur:
        cur.execute("SELECT order_id, customer_id FROM orders")
        orders = list(cur.fetchall())
        cur.execute("SELECT product_id, seller_id FROM order_items LIMIT 1000")
        products = list(cur.fetchall())
        started = time.perf_counter()
        for i in range(count):
            roll = rng.random()
            if roll < 0.2:
                order_id = secrets.token_hex(16)
                customer = rng.choice(orders)[1]
                product, seller = rng.choice(products)
                cur.execute(
                    "INSERT INTO orders (order_id, customer_id, order_status, order_purchase_timestamp) "
                    "VALUES (%s, %s, 'created', '2018-09-01 10:00:00')",
                    (order_id, customer),
                )
                cur.execute(
                    "INSERT INTO order_items (order_id, order_item_id, product_id, seller_id, price, freight_value) "
                    "VALUES (%s, 1, %s, %s, 10.00, 1.50)",
                    (order_id, product, seller),
                )
                orders.append((order_id, customer))
                kinds["insert"] += 1
            elif roll < 0.8:
                order_id = rng.choice(orders)[0]
                if rng.random() < 0.5:
                    cur.execute(
                        "UPDATE orders SET order_status = %s WHERE order_id = %s", (rng.choice(STATUSES), order_id)
                    )
                else:
                    cur.execute("UPDATE order_items SET price = price + 0.01 WHERE order_id = %s", (order_id,))
                kinds["update"] += 1
            else:
                index = rng.randrange(len(orders))
                order_id = orders[index][0]
                orders[index] = orders[-1]
                orders.pop()
                cur.execute("DELETE FROM order_items WHERE order_id = %s", (order_id,))
                cur.execute("DELETE FROM orders WHERE order_id = %s", (order_id,))
                kinds["delete"] += 1
            if i % 100 == 99:
                conn.commit()
        conn.commit()
    committed = time.time()
    conn.close()
    return {"kinds": kinds, "apply_seconds": time.perf_counter() - started, "last_commit": committed}


def dwh_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWH_")}
    env.update(
        {
            "DWH_SOURCE_URL": settings.source_url,
            "DWH_STORE_URL": settings.store_url,
            "DWH_DUCKDB_PATH": settings.duckdb_path,
            "DWH_DATA_DIR": str(settings.data_dir),
            "DWH_CAPTURE": settings.capture,
            "DWH_LOOKBACK_SECONDS": str(settings.lookback_seconds),
        }
    )
    return env


def timed_extract(settings: Settings, mode: str = "auto") -> tuple[float, dict]:
    argv = [str(PROJECT_DIR / ".venv" / "bin" / "dwh"), "extract", "--mode", mode]
    for t in TABLES:
        argv += ["--table", t]
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(dwh_env(settings))
    try:
        return run_timed(argv, PROJECT_DIR)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def batch_rows(settings: Settings, since: float) -> int:
    """Rows of the batches published after `since` (epoch seconds)."""
    total = 0
    for path in Path(settings.store_url).glob("olist/*/*/batch=*/_manifest.json"):
        if path.stat().st_mtime >= since:
            total += json.loads(path.read_text())["row_count"]
    return total


def staging_differences(settings: Settings, server: BinlogServer, database: str) -> dict[str, int]:
    """Per table, keys whose staging row differs from the source (missing, extra or changed)."""
    import duckdb

    out = {}
    queries = {
        "orders": (
            "SELECT order_id, order_status FROM orders",
            "SELECT order_id, order_status FROM staging.stg_olist__orders",
        ),
        "order_items": (
            "SELECT order_id, order_item_id, CAST(price AS CHAR) FROM order_items",
            "SELECT order_id, order_item_id, CAST(price AS VARCHAR) FROM staging.stg_olist__order_items",
        ),
    }
    for table, (source_sql, staging_sql) in queries.items():
        source = {tuple(map(str, r)) for r in server.execute(source_sql, database)}
        with duckdb.connect(settings.duckdb_path, read_only=True) as con:
            staged = {tuple(map(str, r)) for r in con.execute(staging_sql).fetchall()}
        out[table] = len(source ^ staged)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--changes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    work = RESULTS / f"cdc-{stamp}"
    quiet = Reporter(echo=lambda line: None)
    csv = csv_for(args.scale)
    results: dict = {"scale": args.scale, "changes": args.changes, "rounds": []}
    with BinlogServer(work / "server") as server:
        url = server.create_database("cdc")
        modes = {
            name: Settings(
                data_dir=work / name, source_url=url, capture=name, lookback_seconds=0 if name == "cursor" else 900
            )
            for name in CAPTURES
        }
        with open_source(url) as db:
            load_folder(db, select_tables(PROJECT_DIR, TABLES), csv)
        for name, settings in modes.items():
            seconds, stats = timed_extract(settings, "historical")
            pipeline.load(settings, quiet, TABLES)
            pipeline.build(
                settings, quiet, ["--select", MODELS, "--indirect-selection", "cautious"], check_freshness=False
            )
            print(f"{name}: historical extract {seconds:.1f}s, peak {stats['peak_rss_mb']:.0f} MB", flush=True)
        for round_no, count in enumerate(args.changes):
            applied = apply_changes(server, "cdc", count, seed=round_no)
            print(f"applied {count:,} changes {applied['kinds']} in {applied['apply_seconds']:.1f}s", flush=True)
            row = {"changes": count, **applied, "modes": {}}
            for name, settings in modes.items():
                run_started = time.time()
                seconds, stats = timed_extract(settings)
                rows = batch_rows(settings, run_started)
                started = time.perf_counter()
                pipeline.load(settings, quiet, TABLES)
                load_s = time.perf_counter() - started
                started = time.perf_counter()
                pipeline.build(
                    settings, quiet, ["--select", MODELS, "--indirect-selection", "cautious"], check_freshness=False
                )
                build_s = time.perf_counter() - started
                run_s = seconds + load_s + build_s
                row["modes"][name] = {
                    "extract_seconds": seconds,
                    "rows": rows,
                    "rows_per_second": rows / seconds if seconds else 0.0,
                    "peak_rss_mb": stats["peak_rss_mb"],
                    "cpu_seconds": stats["cpu_s"],
                    "load_seconds": load_s,
                    "build_seconds": build_s,
                    "commit_to_staging_seconds": run_s,
                    "staging_differences": staging_differences(settings, server, "cdc"),
                }
                print(f"  {name}: {json.dumps(row['modes'][name])}", flush=True)
            results["rounds"].append(row)
    out = RESULTS / f"cdc-{stamp}.json"
    out.write_text(json.dumps(results, indent=2))
    print(
        "\n| changes | mode | extract s | extract CPU s | rows | rows/s | peak RSS MB | load s | build s | "
        "commit-to-staging s | staging keys differing |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results["rounds"]:
        for name, m in row["modes"].items():
            diff = sum(m["staging_differences"].values())
            print(
                f"| {row['changes']:,} | {name} | {m['extract_seconds']:.1f} | {m['cpu_seconds']:.1f} | "
                f"{m['rows']:,} | "
                f"{m['rows_per_second']:,.0f} | {m['peak_rss_mb']:.0f} | {m['load_seconds']:.1f} | "
                f"{m['build_seconds']:.1f} | {m['commit_to_staging_seconds']:.1f} | {diff:,} |"
            )
    print(f"\nresults: {out}")
    shutil.rmtree(work / "server", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
