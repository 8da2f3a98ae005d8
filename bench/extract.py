"""Benchmark the extractor against the mariadb client and pandas (issue: bench/extract).

    .venv/bin/python bench/extract.py --scales 1 10

For each scale: generate the Olist CSVs (cached under bench/results/csv/), bulk-load
`orders` and `order_items` into a fresh MariaDB database with the project's own loader,
then extract each table with three contenders, each in its own child process so that the
peak RSS (`%M` of GNU `/usr/bin/time`) belongs to that contender alone:

* ours    loaders.extract.extract_table(..., "historical") into a local object store
          (compressed Parquet parts + manifests); only the extract call is timed.
* client  `mariadb --batch --quick -e "<sql>" > file` (uncompressed TSV): the practical
          limit of a dump. Timed from spawn to exit.
* pandas  `pd.read_sql(sql, sqlalchemy engine mysql+pymysql)` then `df.to_csv(path)`.

All three run the same SELECT text: the one the extractor's historical read sends first
(`build_query(..., zero_dates=False)`: the declared columns, every row with a cursor before
now; the extractor adds key ranges, pages and `FORCE INDEX (PRIMARY)`, the others read the
table in one go). The benchmark tables hold no zero dates, so the extractor never switches
to its `NULLIF` query here.

Results go to stdout and bench/results/extract.json; the databases are dropped at the end
unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / "bench" / "results"
TABLES = ["orders", "order_items"]
TARGET_CLIENT_RATIO = 1.0
TARGET_PANDAS_RATIO = 20.0
TARGET_PEAK_MB = 256.0
TARGET_SCALE_GROWTH = 1.20

if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from gnu_time import run_timed  # noqa: E402  (bench/ is the script's own folder)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _rss_mb(field: str = "VmRSS") -> float:
    """This process's current (VmRSS) or peak (VmHWM) resident set, in MB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _scale_tag(scale: float) -> str:
    return f"{scale:g}".replace(".", "_")


def _db_name(prefix: str, scale: float) -> str:
    return f"{prefix}_s{_scale_tag(scale)}"


def _mysql_url(args: argparse.Namespace, database: str, scheme: str = "mysql") -> str:
    auth = args.user + (f":{args.password}" if args.password else "")
    return f"{scheme}://{auth}@{args.host}:{args.port}/{database}"


def _pymysql(args: argparse.Namespace, database: str | None = None):
    import pymysql

    return pymysql.connect(
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
        database=database,
        autocommit=True,
        local_infile=True,
    )


# ------------------------------------------------------------------------------------------
# workers: one contender, one table, in this (child) process; write a JSON result file
# ------------------------------------------------------------------------------------------
def worker_ours(spec: dict) -> dict:
    import connectorx  # noqa: F401  (imported before the baseline like the extractor does)
    import pyarrow.parquet  # noqa: F401

    from loaders.config import Settings
    from loaders.declarations import select_tables
    from loaders.extract import extract_table
    from loaders.sources import open_source
    from loaders.store import ObjectStore

    writer_kwargs = spec.get("writer", {})
    if writer_kwargs:  # a proposed change to _PartWriter, measured without editing loaders/
        import functools

        import loaders.extract.parts as ex

        ex.pq.ParquetWriter = functools.partial(ex.pq.ParquetWriter, **writer_kwargs)
    settings = Settings(
        data_dir=Path(spec["tmp"]), source_url=spec["url"], store_url=spec["out"], **spec.get("settings", {})
    )
    table = select_tables(PROJECT_DIR, [spec["table"]])[0]
    db = open_source(settings.source_url)
    store = ObjectStore(settings.store_url, settings)
    baseline = _rss_mb()
    started = time.perf_counter()
    report = extract_table(settings, db, store, table, "historical")
    seconds = time.perf_counter() - started
    db.close()
    return {
        "rows": report.rows,
        "bytes": report.bytes,
        "seconds": seconds,
        "parts": len(report.parts),
        "baseline_rss_mb": baseline,
    }


def worker_pandas(spec: dict) -> dict:
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(spec["url"].replace("mysql://", "mysql+pymysql://", 1))
    with engine.connect():  # connect once outside the timing, like ours
        pass
    baseline = _rss_mb()
    started = time.perf_counter()
    df = pd.read_sql(spec["sql"], engine)
    read_seconds = time.perf_counter() - started
    df.to_csv(spec["out"], index=False)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "rows": len(df),
        "bytes": os.path.getsize(spec["out"]),
        "seconds": seconds,
        "read_seconds": read_seconds,
        "baseline_rss_mb": baseline,
    }


def run_worker(kind: str, spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    result = {"ours": worker_ours, "pandas": worker_pandas}[kind](spec)
    result["vmhwm_mb"] = _rss_mb("VmHWM")
    Path(spec["result"]).write_text(json.dumps(result))


# ------------------------------------------------------------------------------------------
# the parent: spawn under /usr/bin/time, collect
# ------------------------------------------------------------------------------------------
def measure_python(kind: str, spec: dict, work: Path) -> dict:
    spec_path = work / f"{kind}-spec.json"
    spec = {**spec, "result": str(work / f"{kind}-result.json")}
    spec_path.write_text(json.dumps(spec))
    wall, usage = run_timed(
        [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(spec_path)], PROJECT_DIR, stdout=None
    )
    result = json.loads(Path(spec["result"]).read_text())
    return {**result, **usage, "process_seconds": wall}


def measure_client(args: argparse.Namespace, database: str, sql: str, out: Path) -> dict:
    argv = [args.client, "--batch", "--quick", f"-h{args.host}", f"-P{args.port}", f"-u{args.user}"]
    if args.password:
        argv.append(f"-p{args.password}")
    argv += ["-e", sql, database]
    with open(out, "wb") as handle:
        seconds, usage = run_timed(argv, PROJECT_DIR, stdout=handle)
    with open(out, "rb") as handle:  # one header line, one line per row (no newlines in data)
        rows = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")) - 1
    return {"rows": rows, "bytes": out.stat().st_size, "seconds": seconds, **usage}


def _summarise(contender: str, runs: list[dict], extra: dict | None = None) -> dict:
    rows = {r["rows"] for r in runs}
    if len(rows) != 1:
        raise RuntimeError(f"{contender}: row counts differ between runs: {rows}")
    seconds = statistics.median(r["seconds"] for r in runs)
    n = runs[0]["rows"]
    bytes_ = runs[0]["bytes"]
    out = {
        "contender": contender,
        "rows": n,
        "runs": len(runs),
        "seconds_median": seconds,
        "seconds_all": [round(r["seconds"], 4) for r in runs],
        "rows_per_s": n / seconds if seconds else None,
        "bytes": bytes_,
        "mb_per_s": bytes_ / 1e6 / seconds if seconds else None,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "cpu_s_median": statistics.median(r["cpu_s"] for r in runs),
    }
    if "baseline_rss_mb" in runs[0]:
        out["baseline_rss_mb"] = max(r["baseline_rss_mb"] for r in runs)
    for key in ("parts", "read_seconds"):
        if key in runs[0]:
            out[key] = runs[0][key] if key == "parts" else statistics.median(r[key] for r in runs)
    out.update(extra or {})
    return out


# ------------------------------------------------------------------------------------------
# setup per scale
# ------------------------------------------------------------------------------------------
def csv_folder(scale: float, seed: int, tables) -> Path:
    """Generated Olist CSVs for this scale, cached; only the benchmarked tables' files kept."""
    from olist_demo.olist_generator import generate_olist

    folder = RESULTS / "csv" / f"scale-{_scale_tag(scale)}-seed-{seed}"
    marker = folder / ".complete"
    wanted = {t.csv_file for t in tables}
    if marker.is_file() and all((folder / f).is_file() for f in wanted):
        print(f"[scale {scale:g}] using cached CSVs in {folder.relative_to(PROJECT_DIR)}", flush=True)
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"[scale {scale:g}] generating Olist CSVs into {folder.relative_to(PROJECT_DIR)} ...", flush=True)
    started = time.perf_counter()
    counts = generate_olist(folder, scale=scale, seed=seed, parallel=True)
    for extra in folder.iterdir():  # keep the cache small: geolocation alone is 10M rows at 10
        if extra.is_file() and extra.name not in wanted:
            extra.unlink()
    marker.write_text(json.dumps({f: counts[f] for f in wanted}))
    print(f"[scale {scale:g}] generated in {time.perf_counter() - started:.0f}s", flush=True)
    return folder


def load_source(args: argparse.Namespace, database: str, tables, folder: Path) -> None:
    from loaders.sources import open_source
    from loaders.sources.bootstrap import load_folder

    if args.reuse and _loaded(args, database, tables, folder):
        print(f"  reusing database {database} (--reuse: row counts match the CSVs)", flush=True)
        return
    conn = _pymysql(args)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    finally:
        conn.close()
    with open_source(_mysql_url(args, database)) as db:
        for report in load_folder(db, tables, folder, replace=True):
            print(f"  loaded {report.table}: {report.rows_stored:,} rows in {report.seconds:.1f}s", flush=True)


def _loaded(args: argparse.Namespace, database: str, tables, folder: Path) -> bool:
    import pymysql

    expected = json.loads((folder / ".complete").read_text())
    try:
        conn = _pymysql(args, database)
    except pymysql.MySQLError:
        return False
    try:
        with conn.cursor() as cur:
            for t in tables:
                cur.execute(f"SELECT count(*) FROM `{t.name}`")
                if cur.fetchone()[0] != expected[t.csv_file]:
                    return False
    except pymysql.MySQLError:
        return False
    finally:
        conn.close()
    return True


def drop_databases(args: argparse.Namespace, names: list[str]) -> None:
    if not names:
        return
    conn = _pymysql(args)
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------
# the benchmark
# ------------------------------------------------------------------------------------------
def parse_variant(spec: str) -> dict:
    """`key=value,...`: Settings fields (batch_rows=16384, parquet_compression=zstd) or
    `writer.<ParquetWriter keyword>` (writer.use_dictionary=false), the latter patched into
    the extractor's Parquet writer in the worker process only."""
    settings: dict = {}
    writer: dict = {}
    for item in filter(None, spec.split(",")):
        key, _, raw = item.partition("=")
        value: object = {"true": True, "false": False}.get(raw.lower(), raw)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if key.startswith("writer."):
            writer[key.removeprefix("writer.")] = value
        else:
            settings[key] = value
    return {"settings": settings, "writer": writer}


def bench_table(args, database: str, table, scale: float, work: Path, variants: dict) -> list[dict]:
    from loaders.extract import build_query
    from loaders.sources import open_source

    url = _mysql_url(args, database)
    with open_source(url) as db:
        sql = build_query(db, table, None, db.now(), zero_dates=False)
        n_rows = db.row_count(table)
    print(f"\n[scale {scale:g}] {table.name}: {n_rows:,} rows\n  SQL: {sql}", flush=True)

    # Warm the buffer pool / page cache once so that whoever runs first is not penalised.
    measure_client(args, database, sql, work / "warmup.tsv")
    (work / "warmup.tsv").unlink()

    runs: dict[str, list[dict]] = {name: [] for name in [*variants, "client"]}
    for i in range(args.repeat):
        order = [*variants, "client"]
        order = order[i % len(order) :] + order[: i % len(order)]  # rotate who goes first
        for name in order:
            if name == "client":
                out = work / "client.tsv"
                r = measure_client(args, database, sql, out)
                out.unlink()
            else:
                out = work / f"store-{name}"
                r = measure_python(
                    "ours", {"url": url, "table": table.name, "tmp": str(work), "out": str(out), **variants[name]}, work
                )
                shutil.rmtree(out)
            runs[name].append(r)
            print(
                f"  run {i + 1}/{args.repeat} {name:<18} {r['rows']:>10,} rows "
                f"{r['seconds']:7.2f}s {r['rows'] / r['seconds']:>12,.0f} rows/s "
                f"peak {r['peak_rss_mb']:6.0f} MB",
                flush=True,
            )

    results = [_summarise(name, runs[name], variants[name]) for name in variants]
    results.append(_summarise("client", runs["client"]))

    capped = args.pandas_max_rows is not None and n_rows > args.pandas_max_rows
    pandas_sql = sql + (f" LIMIT {args.pandas_max_rows}" if capped else "")
    if capped:
        print(
            f"  NOTE: pandas capped at {args.pandas_max_rows:,} of {n_rows:,} rows "
            "(--pandas-max-rows); its rows/s and peak memory are for the capped read",
            flush=True,
        )
    pandas_runs = []
    for i in range(args.pandas_repeat):
        out = work / "pandas.csv"
        r = measure_python("pandas", {"url": url, "sql": pandas_sql, "out": str(out)}, work)
        out.unlink()
        pandas_runs.append(r)
        print(
            f"  run {i + 1}/{args.pandas_repeat} {'pandas':<18} {r['rows']:>10,} rows "
            f"{r['seconds']:7.2f}s {r['rows'] / r['seconds']:>12,.0f} rows/s "
            f"peak {r['peak_rss_mb']:6.0f} MB",
            flush=True,
        )
    results.append(_summarise("pandas", pandas_runs, {"capped_at": args.pandas_max_rows if capped else None}))

    for r in results:
        r.update(scale=scale, table=table.name, table_rows=n_rows)
        if (r["contender"] != "pandas" or not capped) and r["rows"] != n_rows:
            raise RuntimeError(f"{r['contender']} read {r['rows']} rows of {n_rows} in {table.name}")
    return results


def check_targets(results: list[dict], variants: dict) -> list[dict]:
    """One line per (variant, target) with the measured value and whether it is met."""
    checks = []
    by = {(r["scale"], r["table"], r["contender"]): r for r in results}
    scales = sorted({r["scale"] for r in results})
    tables = [t for t in TABLES if any(r["table"] == t for r in results)]
    for name in variants:
        for s in scales:
            for t in tables:
                ours, client, pandas = by[(s, t, name)], by[(s, t, "client")], by[(s, t, "pandas")]
                ratio_c = ours["rows_per_s"] / client["rows_per_s"]
                ratio_p = ours["rows_per_s"] / pandas["rows_per_s"]
                checks += [
                    {
                        "variant": name,
                        "scale": s,
                        "table": t,
                        "target": "rows/s >= 1.0 x client",
                        "value": round(ratio_c, 2),
                        "met": ratio_c >= TARGET_CLIENT_RATIO,
                    },
                    {
                        "variant": name,
                        "scale": s,
                        "table": t,
                        "target": "rows/s >= 20 x pandas",
                        "value": round(ratio_p, 1),
                        "met": ratio_p >= TARGET_PANDAS_RATIO,
                        "note": "pandas capped" if pandas.get("capped_at") else None,
                    },
                    {
                        "variant": name,
                        "scale": s,
                        "table": t,
                        "target": "peak RSS < 256 MB",
                        "value": round(ours["peak_rss_mb"]),
                        "met": ours["peak_rss_mb"] < TARGET_PEAK_MB,
                    },
                ]
        if len(scales) >= 2:
            lo, hi = scales[0], scales[-1]
            for t in tables:
                growth = by[(hi, t, name)]["peak_rss_mb"] / by[(lo, t, name)]["peak_rss_mb"]
                checks.append(
                    {
                        "variant": name,
                        "scale": hi,
                        "table": t,
                        "target": f"peak RSS scale {hi:g} <= 1.2 x scale {lo:g}",
                        "value": round(growth, 2),
                        "met": growth <= TARGET_SCALE_GROWTH,
                    }
                )
    return checks


def print_results(results: list[dict], checks: list[dict]) -> None:
    head = (
        f"{'scale':>5} {'table':<12} {'contender':<18} {'rows':>10} {'s':>7} {'rows/s':>11} "
        f"{'MB out':>8} {'MB/s':>7} {'peak MB':>8} {'cpu s':>6}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in results:
        cap = f"  (capped at {r['capped_at']:,})" if r.get("capped_at") else ""
        print(
            f"{r['scale']:>5g} {r['table']:<12} {r['contender']:<18} {r['rows']:>10,} "
            f"{r['seconds_median']:>7.2f} {r['rows_per_s']:>11,.0f} {r['bytes'] / 1e6:>8.1f} "
            f"{r['mb_per_s']:>7.1f} {r['peak_rss_mb']:>8.0f} {r['cpu_s_median']:>6.1f}{cap}"
        )
    print("\nTargets:")
    for c in checks:
        note = f" ({c['note']})" if c.get("note") else ""
        print(
            f"  {'MET ' if c['met'] else 'MISS'} {c['variant']:<18} scale {c['scale']:>4g} "
            f"{c['table']:<12} {c['target']:<32} {c['value']}{note}"
        )


def markdown(results: list[dict], checks: list[dict], variants: dict) -> str:
    """The results and targets as Markdown tables (pasted into BENCHMARKS.md)."""
    lines = [
        "| scale | table | contender | rows | runs | seconds (median) | rows/s (median) | rows/s (min-max) "
        "| MB written | MB/s | peak RSS MB |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cap = f" (capped at {r['capped_at']:,} rows)" if r.get("capped_at") else ""
        lines.append(
            f"| {r['scale']:g} | {r['table']} | {r['contender']}{cap} | {r['rows']:,} | {r['runs']} | "
            f"{r['seconds_median']:.2f} | {r['rows_per_s']:,.0f} | "
            f"{r['rows'] / max(r['seconds_all']) / 1e3:,.0f}k-{r['rows'] / min(r['seconds_all']) / 1e3:,.0f}k | "
            f"{r['bytes'] / 1e6:.1f} | "
            f"{r['mb_per_s']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    lines += ["", "| variant | scale | table | target | measured | met |", "|---|---:|---|---|---:|---|"]
    for c in checks:
        lines.append(
            f"| {c['variant']} | {c['scale']:g} | {c['table']} | {c['target']} | {c['value']} | "
            f"{'yes' if c['met'] else '**no**'} |"
        )
    notes = [
        f"- `{name}`: "
        + ", ".join(
            [f"{k}={v}" for k, v in v_["settings"].items()]
            + [f"ParquetWriter {k}={v} (patched)" for k, v in v_["writer"].items()]
        )
        for name, v_ in variants.items()
        if v_["settings"] or v_["writer"]
    ]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    parser.add_argument("--scales", nargs="+", type=float, default=[1.0, 10.0])
    parser.add_argument("--tables", nargs="+", default=TABLES, choices=TABLES)
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs of ours and the client per table (median time, max memory)"
    )
    parser.add_argument("--pandas-repeat", type=int, default=1, help="runs of pandas per table")
    parser.add_argument(
        "--pandas-max-rows",
        type=int,
        default=None,
        help="read at most N rows with pandas (reported as capped everywhere)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="also run ours with other Settings, e.g. zstd:parquet_compression=zstd, "
        "or a patched writer: nodict:writer.use_dictionary=false",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default=os.environ.get("BENCH_MYSQL_PASSWORD", ""))
    parser.add_argument("--client", default=shutil.which("mariadb") or "mariadb")
    parser.add_argument("--database-prefix", default="dwh_bench")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the temp folder")
    parser.add_argument(
        "--reuse", action="store_true", help="skip the bulk load when a kept database already holds the CSVs' rows"
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "extract.json")
    parser.add_argument(
        "--buffer-pool-mb",
        type=int,
        default=None,
        help="set MariaDB's innodb_buffer_pool_size for the run (restored at the end), "
        "so the tables are served from memory as on a sized RDS instance",
    )
    args = parser.parse_args()

    if args.worker:
        run_worker(*args.worker)
        return 0

    from loaders.declarations import select_tables

    tables = select_tables(PROJECT_DIR, args.tables)
    variants: dict[str, dict] = {"ours": {"settings": {}, "writer": {}}}
    for item in args.variant:
        name, _, spec = item.partition(":")
        variants[f"ours-{name}"] = parse_variant(spec)

    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="extract-", dir=RESULTS))
    created: list[str] = []
    results: list[dict] = []
    started = time.perf_counter()
    restore_pool = None
    if args.buffer_pool_mb:
        with _pymysql(args) as conn, conn.cursor() as cur:
            cur.execute("SELECT @@innodb_buffer_pool_size")
            restore_pool = cur.fetchone()[0]
            cur.execute(f"SET GLOBAL innodb_buffer_pool_size = {int(args.buffer_pool_mb) * 1024 * 1024}")
            cur.execute("SELECT @@innodb_buffer_pool_size")
            print(f"innodb_buffer_pool_size {restore_pool // 2**20} MB -> {cur.fetchone()[0] // 2**20} MB for this run")
    try:
        for scale in args.scales:
            folder = csv_folder(scale, args.seed, tables)
            database = _db_name(args.database_prefix, scale)
            created.append(database)
            load_source(args, database, tables, folder)
            for table in tables:
                results += bench_table(args, database, table, scale, work, variants)
    finally:
        if restore_pool is not None:
            with _pymysql(args) as conn, conn.cursor() as cur:
                cur.execute(f"SET GLOBAL innodb_buffer_pool_size = {int(restore_pool)}")
        if not args.keep:
            drop_databases(args, created)
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept databases {created} and {work}")

    checks = check_targets(results, variants)
    print_results(results, checks)
    doc = {
        "command": " ".join([".venv/bin/python", "bench/extract.py", *sys.argv[1:]]),
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "results": results,
        "targets": checks,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2, default=str))
    md = args.json.with_suffix(".md")
    md.write_text(markdown(results, checks, variants))
    print(f"\nwrote {args.json} and {md}")
    return 0 if all(c["met"] for c in checks if c["variant"] == "ours") else 1


if __name__ == "__main__":
    sys.exit(main())
