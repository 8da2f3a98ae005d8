"""Benchmark `dwh verify` (issue 12: bench/verify), MariaDB -> DuckDB.

    nice -n 5 .venv/bin/python bench/verify.py --scales 1 10

Per scale: generate the Olist CSVs (orders, order_items), bulk-load them into a fresh MariaDB
database, extract (historical) and load them into a fresh DuckDB warehouse, then per table:

* scan     one full-table checksum scan on the source: `SELECT count(*), SUM(<hash prefix>)`
           over the whole table, the lower bound of any full comparison;
* equal    `verify_table` on equal tables;
* 0.1%     `verify_table` after 0.1% of the rows were changed in the source with their cursor
           written back unchanged (so they are differences, not in-flight rows).

Times are wall seconds; bytes are verify's estimate of what it read from the source; peak RSS
is this process's VmHWM growth during the verify (memory flat in table size). `reladiff` is not
installed in this project (docs/verify.md): not run. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))


def _hwm_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def bench_scale(scale: float, host: str, port: int) -> list[dict]:
    import pymysql

    from loaders.config import Settings
    from loaders.declarations import declared_tables
    from loaders.extract import extract_table, read_watermark
    from loaders.load import load_pending_batches
    from loaders.sources import open_source
    from loaders.sources.bootstrap import load_folder
    from loaders.store import ObjectStore
    from loaders.verify.checksum import bucket_sum_sql, row_hash_sql
    from loaders.verify.diff import verify_table
    from loaders.warehouses import open_warehouse
    from olist_demo.olist_generator import generate_olist

    database = f"bench_verify_{str(scale).replace('.', '_')}"
    work = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    url = f"mysql://root@{host}:{port}/{database}"
    admin = pymysql.connect(host=host, port=port, user="root", password="", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    results = []
    try:
        settings = Settings(data_dir=work / "data", source_url=url)
        tables = [declared_tables(PROJECT_DIR)[t] for t in ("orders", "order_items")]
        print(f"[scale {scale:g}] generating and loading ...", flush=True)
        generate_olist(work / "csv", scale=scale, seed=42)
        store = ObjectStore(settings.store_url, settings)
        with open_source(url) as db:
            for report in load_folder(db, tables, work / "csv"):
                print(f"  source {report.table}: {report.rows_stored:,} rows", flush=True)
            for t in tables:
                extract_table(settings, db, store, t, "historical")
        with open_warehouse(settings, store) as wh:
            load_pending_batches(wh, tables)
        for t in tables:
            with open_source(url) as db, open_warehouse(settings, store) as wh:
                h = row_hash_sql("mysql", t.columns)
                started = time.perf_counter()
                db.execute(f"SELECT count(*), {bucket_sum_sql('mysql', h)} FROM `{t.name}`")
                scan = time.perf_counter() - started
                upper = read_watermark(store, t)
                before = _hwm_mb()
                equal = verify_table(db, wh, t, upper)
                equal_mb = _hwm_mb() - before
                n = max(1, equal.source_rows // 1000)
                first = db.quote(t.primary_key[0])
                keys = db.execute(f"SELECT DISTINCT {first} FROM `{t.name}` ORDER BY md5({first}) LIMIT {n}")
                changed = 0
                for (k,) in keys:
                    changed += db._conn.cursor().execute(  # cursor written back: a difference, not in flight
                        f"UPDATE `{t.name}` SET `{t.cursor}` = `{t.cursor}`, {_touch(t)} WHERE {first} = %s", (k,)
                    )
                before = _hwm_mb()
                differ = verify_table(db, wh, t, upper)
                differ_mb = _hwm_mb() - before
            row = {
                "scale": scale,
                "table": t.name,
                "rows": equal.source_rows,
                "scan_s": round(scan, 2),
                "equal_s": round(equal.seconds, 2),
                "equal_ratio": round(equal.seconds / scan, 2) if scan else None,
                "equal_mb_read": round(equal.source_bytes / 1e6, 2),
                "equal_rss_growth_mb": round(equal_mb, 1),
                "changed_rows": changed,
                "found": len(differ.changed) + len(differ.missing) + len(differ.extra),
                "differ_s": round(differ.seconds, 2),
                "differ_ratio": round(differ.seconds / scan, 2) if scan else None,
                "differ_mb_read": round(differ.source_bytes / 1e6, 2),
                "differ_rss_growth_mb": round(differ_mb, 1),
                "ranges": differ.ranges,
            }
            print("  " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            results.append(row)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()
    return results


def _touch(table: Any) -> str:  # a loaders.declarations.Table
    """A content change of one non-key column: a status letter, or a price cent."""
    if table.name == "orders":
        return "`order_status` = CONCAT(`order_status`, 'x')"
    return "`price` = `price` + 0.01"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    args = parser.parse_args()
    rows = [r for scale in args.scales for r in bench_scale(scale, args.host, args.port)]
    head = (
        "| scale | table | rows | source scan s | verify equal s (x scan) | MB read | 0.1% changed | found "
        "| verify 0.1% s (x scan) | RSS growth MB |"
    )
    print("\n" + head)
    print("|---" * 10 + "|")
    for r in rows:
        print(
            f"| {r['scale']:g} | {r['table']} | {r['rows']:,} | {r['scan_s']} | {r['equal_s']} ({r['equal_ratio']}) | "
            f"{r['equal_mb_read']} | {r['changed_rows']} | {r['found']} | {r['differ_s']} ({r['differ_ratio']}) | "
            f"{r['equal_rss_growth_mb']} / {r['differ_rss_growth_mb']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
