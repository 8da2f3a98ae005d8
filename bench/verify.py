"""Benchmark `dwh verify` (issue 12: bench/verify), MariaDB -> DuckDB.

    nice -n 5 .venv/bin/python bench/verify.py --scales 1 10

Per scale: generate the Olist CSVs (orders, order_items), bulk-load them into a fresh MariaDB
database, extract (historical) and load them into a fresh DuckDB warehouse, then per table:

* scan     one full-table checksum scan on the source: `SELECT count(*), SUM(<hash prefix>)`
           over the whole table, the lower bound of any full comparison;
* equal    `verify_table` on equal tables;
* 0.1%     `verify_table` after 0.1% of the rows were changed in the source with their cursor
           written back unchanged (so they are differences, not in-flight rows).

Scans and verifies alternate `--repeat` times (3) per table and state, and the medians are
reported (the machine is shared: one run of each was seen to vary by 2 x). Times are wall
seconds; bytes are verify's estimate of what it read from the source; peak RSS
is this process's VmHWM growth during the verify (memory flat in table size).

Scale 10 (any scale above 1) loads the scale-1 CSVs and copies the rows in the database with
new hex order ids (`_replicate`): only orders and order_items are needed, and generating them at
scale 10 takes minutes. `reladiff` (not a dependency: docs/verify.md) runs when
`--reladiff-python` (default `.reladiff-venv/bin/python`, a scratch venv) can import it; it
compares the source table with a plain copy of the warehouse's latest versions in a DuckDB file
of its own (made once per scale, not timed), with `hashdiff`, its default for two databases.
The database and the working folder are removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
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


def _replicate(admin: Any, database: str, tables: list[str], copies: int) -> None:
    """Scale the loaded scale-1 tables up in the database itself: `copies - 1` more copies of
    every row (MariaDB's sequence table `seq_1_to_N`), copy i with the last hex digit of
    `order_id` moved by i (mod 16): ids stay 32 hex digits (reladiff keys them as such) and
    order_items still point at their order; a copy collides with another id only if two ids
    share their first 31 digits. Much faster than generating and bulk-loading the CSVs at
    scale 10 (only orders and order_items are needed)."""
    with admin.cursor() as cur:
        for table in tables:
            cur.execute(
                "SELECT GROUP_CONCAT(CONCAT('`', column_name, '`') ORDER BY ordinal_position) "
                "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                (database, table),
            )
            (cols,) = cur.fetchone()
            moved = "LOWER(CONV(MOD(CONV(RIGHT(`order_id`, 1), 16, 10) + seq, 16), 10, 16))"
            picked = cols.replace("`order_id`", f"CONCAT(SUBSTRING(`order_id`, 1, 31), {moved})", 1)
            # from a copy: an INSERT ... SELECT from its own table would go through a temporary
            # table on disk (seen deleted under the server on this shared machine)
            cur.execute(f"CREATE TABLE `{database}`.`{table}__base` AS SELECT * FROM `{database}`.`{table}`")
            cur.execute(
                f"INSERT INTO `{database}`.`{table}` ({cols}) SELECT {picked} "
                f"FROM `{database}`.`{table}__base` CROSS JOIN `{database}`.seq_1_to_{copies - 1}"
            )
            cur.execute(f"DROP TABLE `{database}`.`{table}__base`")


def _reladiff_copy(wh: Any, tables: list[Any], path: Path) -> None:
    """The warehouse's latest versions (tombstones dropped) as plain tables in a DuckDB file of
    their own: reladiff compares one table with one table (not timed)."""
    from loaders.declarations import OP_COLUMN, OP_DELETE
    from loaders.load.statements import latest_versions_sql
    from loaders.warehouses import literal, quote

    wh.execute(f"ATTACH {literal(str(path))} AS reladiff_copy")
    try:
        for t in tables:
            cols = [quote(c) for c in t.column_names]
            wh.execute(
                f"CREATE TABLE reladiff_copy.{quote(t.name)} AS SELECT {', '.join('l.' + c for c in cols)} "
                f"FROM ({latest_versions_sql(wh, t, cols)}) AS l WHERE COALESCE(l.{quote(OP_COLUMN)}, 'r') <> "
                f"{literal(OP_DELETE)}"
            )
    finally:
        wh.execute("DETACH reladiff_copy")


RELADIFF_SCRIPT = """
import json, sys, time
import reladiff
source, copy, table, keys, cols = json.loads(sys.argv[1])
a = reladiff.connect_to_table(source, table, tuple(keys), extra_columns=tuple(cols))
b = reladiff.connect_to_table("duckdb://" + copy, table, tuple(keys), extra_columns=tuple(cols))
started = time.perf_counter()
rows = list(reladiff.diff_tables(a, b, algorithm="hashdiff"))
print(json.dumps({"seconds": time.perf_counter() - started, "keys": len({r[1][:len(keys)] for r in rows})}))
"""


def _reladiff(python: Path | None, url: str, copy: Path, table: Any) -> dict | None:
    """One `reladiff` hashdiff of the source table against its copy, in the scratch venv."""
    import json
    import subprocess

    if python is None:
        return None
    cols = [c for c in table.column_names if c not in table.primary_key]
    args = json.dumps([url, str(copy), table.name, list(table.primary_key), cols])
    done = subprocess.run(
        [str(python), "-c", RELADIFF_SCRIPT, args], capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode != 0:
        print(f"  reladiff failed on {table.name}: {done.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _reladiff_python(path: str) -> Path | None:
    """The scratch venv's python when it can import reladiff; None (and a note) otherwise."""
    import subprocess

    python = Path(path)
    if python.exists() and subprocess.run([str(python), "-c", "import reladiff"], check=False).returncode == 0:
        return python
    print(f"reladiff: not importable with {python} (a scratch venv, see docs/verify.md): column skipped", flush=True)
    return None


def _median(diffs: list[Any]) -> Any:
    """The TableDiff of median time (the verify results are the same each time)."""
    return sorted(diffs, key=lambda d: d.seconds)[len(diffs) // 2]


def bench_scale(scale: float, host: str, port: int, reladiff_python: Path | None, repeat: int) -> list[dict]:
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
    base = min(scale, 1.0)
    copies = max(1, round(scale / base))
    try:
        settings = Settings(data_dir=work / "data", source_url=url)
        tables = [declared_tables(PROJECT_DIR)[t] for t in ("orders", "order_items")]
        print(f"[scale {scale:g}] generating (scale {base:g}) and loading ...", flush=True)
        generate_olist(work / "csv", scale=base, seed=42)
        store = ObjectStore(settings.store_url, settings)
        with open_source(url) as db:
            for report in load_folder(db, tables, work / "csv"):
                print(f"  source {report.table}: {report.rows_stored:,} rows", flush=True)
        if copies > 1:
            _replicate(admin, database, [t.name for t in tables], copies)
            print(f"  x {copies} in the database", flush=True)
        with open_source(url) as db:
            for t in tables:
                extract_table(settings, db, store, t, "historical")
        copy = work / "reladiff.duckdb"
        with open_warehouse(settings, store) as wh:
            load_pending_batches(wh, tables)
            if reladiff_python:
                _reladiff_copy(wh, tables, copy)
        for t in tables:
            h = row_hash_sql("mysql", t.columns)
            scans: list[float] = []

            def scan(db: Any) -> None:
                started = time.perf_counter()
                db.execute(f"SELECT count(*), {bucket_sum_sql('mysql', h)} FROM `{t.name}`")  # noqa: B023
                scans.append(time.perf_counter() - started)  # noqa: B023

            with open_source(url) as db, open_warehouse(settings, store) as wh:
                upper = read_watermark(store, t)
                before = _hwm_mb()
                equals = []
                for _ in range(repeat):  # interleaved: the machine's load hits both alike
                    scan(db)
                    equals.append(verify_table(db, wh, t, upper))
                equal = _median(equals)
                equal_mb = _hwm_mb() - before
            rd_equal = _reladiff(reladiff_python, url, copy, t)
            with open_source(url) as db, open_warehouse(settings, store) as wh:
                n = max(1, equal.source_rows // 1000)
                first = db.quote(t.primary_key[0])
                # order ids from orders (unique: a top-n sort, no temporary table of every key)
                keys = db.execute(f"SELECT {first} FROM `orders` ORDER BY md5({first}) LIMIT {n}")
                changed = 0
                for (k,) in keys:
                    changed += db._conn.cursor().execute(  # cursor written back: a difference, not in flight
                        f"UPDATE `{t.name}` SET `{t.cursor}` = `{t.cursor}`, {_touch(t)} WHERE {first} = %s", (k,)
                    )
                before = _hwm_mb()
                differs = []
                for _ in range(repeat):
                    scan(db)
                    differs.append(verify_table(db, wh, t, upper))
                differ = _median(differs)
                differ_mb = _hwm_mb() - before
            rd_differ = _reladiff(reladiff_python, url, copy, t)
            scan_s = statistics.median(scans)
            row = {
                "scale": scale,
                "table": t.name,
                "rows": equal.source_rows,
                "scan_s": round(scan_s, 2),
                "scans": [round(x, 2) for x in scans],
                "equal_s": round(equal.seconds, 2),
                "equals": [round(d.seconds, 2) for d in equals],
                "equal_ratio": round(equal.seconds / scan_s, 2),
                "equal_mb_read": round(equal.source_bytes / 1e6, 2),
                "equal_rss_growth_mb": round(equal_mb, 1),
                "changed_rows": changed,
                "found": len(differ.changed) + len(differ.missing) + len(differ.extra),
                "differ_s": round(differ.seconds, 2),
                "differs": [round(d.seconds, 2) for d in differs],
                "differ_ratio": round(differ.seconds / scan_s, 2),
                "differ_mb_read": round(differ.source_bytes / 1e6, 2),
                "differ_rss_growth_mb": round(differ_mb, 1),
                "buckets": differ.ranges,
                "queries": f"{equal.queries}/{differ.queries}",
                "equal_source_s": round(equal.source_seconds, 2),
                "equal_warehouse_s": round(equal.warehouse_seconds, 2),
                "differ_source_s": round(differ.source_seconds, 2),
                "differ_warehouse_s": round(differ.warehouse_seconds, 2),
                "reladiff_equal_s": round(rd_equal["seconds"], 2) if rd_equal else None,
                "reladiff_differ_s": round(rd_differ["seconds"], 2) if rd_differ else None,
                "reladiff_found": rd_differ["keys"] if rd_differ else None,
            }
            print("  " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            results.append(row)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()
        shutil.rmtree(work, ignore_errors=True)
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
    parser.add_argument("--repeat", type=int, default=3, help="scans and verifies per table and state (medians)")
    parser.add_argument(
        "--reladiff-python",
        default=str(PROJECT_DIR / ".reladiff-venv" / "bin" / "python"),
        help="a python that can import reladiff (a scratch venv: not a dependency); skipped when it cannot",
    )
    args = parser.parse_args()
    reladiff_python = _reladiff_python(args.reladiff_python)
    rows = [r for scale in args.scales for r in bench_scale(scale, args.host, args.port, reladiff_python, args.repeat)]
    head = (
        "| scale | table | rows | source scan s | verify equal s (x scan) | 0.1% changed | found "
        "| verify 0.1% s (x scan) | MB read equal / 0.1% | RSS growth MB | reladiff equal s (x) "
        "| reladiff 0.1% s (x), found |"
    )
    print("\n" + head)
    print("|---" * 12 + "|")

    def ratio(seconds: float | None, scan: float) -> str:
        return "not run" if seconds is None else f"{seconds} ({seconds / scan:.1f})"

    for r in rows:
        print(
            f"| {r['scale']:g} | {r['table']} | {r['rows']:,} | {r['scan_s']} | {r['equal_s']} ({r['equal_ratio']}) | "
            f"{r['changed_rows']} | {r['found']} | {r['differ_s']} ({r['differ_ratio']}) | "
            f"{r['equal_mb_read']} / {r['differ_mb_read']} | "
            f"{r['equal_rss_growth_mb']} / {r['differ_rss_growth_mb']} | "
            f"{ratio(r['reladiff_equal_s'], r['scan_s'])} | {ratio(r['reladiff_differ_s'], r['scan_s'])}"
            f"{'' if r['reladiff_found'] is None else ', ' + str(r['reladiff_found'])} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
