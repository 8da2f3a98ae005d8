"""Benchmark the funnel converter against PySpark and DuckDB (issue 4: bench/funnel).

    .venv/bin/python bench/funnel.py --sizes 1 5          # or: make bench-funnel

For each size (GB of CSV, at least size x 2^30 bytes): generate a funnel file in the vendor's
format (three yearly files of `olist_demo.funnel_generator.generate_funnel` concatenated: 36 months,
cached under bench/results/csv/), then convert it to year/month-partitioned Parquet with three
contenders, each in its own child process under GNU `/usr/bin/time`, so that the peak RSS is
that contender's alone:

* ours    `loaders.funnel.convert_file(Settings(...defaults), ObjectStore(folder), name)`; the
          file is landed first (a hard link into landing/funnel/), only the call is timed.
* spark   PySpark `local[2]` with its defaults (the seed's engine): `spark.read.csv` with string
          columns, `to_timestamp(event_timestamp, 'MM/dd/yyyy hh:mm a')`, year and month
          columns, `write.partitionBy("year", "month").parquet(...)`. Timed from the worker's
          start (before `import pyspark`) to `spark.stop()`, JVM start included, as the seed ran
          it; the JVM start (getOrCreate) is reported apart.
          Its peak memory is the Python driver's plus the JVM's (VmHWM of the process tree).
* duckdb  `COPY (SELECT ... FROM read_csv(..., timestampformat = '%m/%d/%Y %I:%M %p')) TO ...
          (FORMAT PARQUET, PARTITION_BY (year, month))` at DuckDB's default settings; only
          connect + COPY is timed.

Every contender writes the same columns (the source's six with a typed timestamp and NULL for
an empty category, source_file, converted_at, the year/month partitions); the row counts of
their outputs are checked against the file's. Then a one-month aggregate (events per
event_type in one month) runs with DuckDB over ours' Parquet lake (hive partitions) and over
the CSV (read_csv), each in its own process. The page cache is warmed with a read of the file
before each run. Results go to stdout and bench/results/funnel.json (+ .md); exit status 1
when a target of ours is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / "bench" / "results"
BYTES_PER_ROW = 146  # what generate_funnel writes on average (measured)
YEARS = (2016, 2017, 2018)
QUERY_MONTH = (2017, 6)
TIMESTAMP_FORMAT = "%m/%d/%Y %I:%M %p"
SPARK_PATTERN = "MM/dd/yyyy hh:mm a"
TARGET_SPARK_RATIO = 7.0
TARGET_DUCKDB_RATIO = 1.0
TARGET_PEAK_MB = 1000.0
TARGET_QUERY_RATIO = 50.0
sys.path.insert(0, str(PROJECT_DIR))
from loaders.declarations import funnel_declaration  # noqa: E402  (after the project is on the path)

COLUMNS = funnel_declaration(PROJECT_DIR).header  # models/staging/funnel/_funnel__sources.yml

if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from gnu_time import run_timed  # noqa: E402  (bench/ is the script's own folder)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _status_mb(pid: int | str = "self", field: str = "VmHWM") -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _descendants(root: int) -> list[int]:
    """Every live process below root (children, their children, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _tree_hwm_mb() -> float:
    """Peak RSS of this process plus the peaks of its live descendants (the JVM for Spark)."""
    return _status_mb() + sum(_status_mb(pid) for pid in _descendants(os.getpid()))


def _descendants_cpu_s() -> float:
    """CPU seconds (user + system) used so far by the live descendants of this process."""
    total = 0
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _size_tag(size: float) -> str:
    return f"{size:g}".replace(".", "_")


def _warm(path: Path) -> None:
    """Read the file once so that every contender starts with it in the page cache."""
    buffer = bytearray(1 << 24)
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass


def _tool_versions() -> dict:
    import duckdb
    import pyarrow

    versions = {"python": platform.python_version(), "pyarrow": pyarrow.__version__, "duckdb": duckdb.__version__}
    try:
        import pyspark

        versions["pyspark"] = pyspark.__version__
    except ImportError:
        versions["pyspark"] = None
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
        versions["java"] = java[0] if java else None
    except OSError:
        versions["java"] = None
    return versions


# ------------------------------------------------------------------------------------------
# the generated file
# ------------------------------------------------------------------------------------------
def olist_folder(seed: int) -> Path:
    """The Olist customers and products the funnel ids are drawn from (scale 1), cached."""
    from olist_demo.olist_generator import generate_olist

    folder = RESULTS / "csv" / f"olist-funnel-seed-{seed}"
    wanted = ("olist_customers_dataset.csv", "olist_products_dataset.csv")
    if (folder / ".complete").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    generate_olist(folder, scale=1.0, seed=seed)
    for extra in folder.iterdir():
        if extra.name not in wanted:
            extra.unlink()
    (folder / ".complete").write_text("ok")
    return folder


def funnel_file(size: float, seed: int) -> tuple[Path, dict]:
    """A funnel CSV of at least size x 2^30 bytes over 36 months, generated once and cached."""
    from olist_demo.funnel_generator import generate_funnel

    path = RESULTS / "csv" / f"funnel-{_size_tag(size)}gb-seed-{seed}.csv"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("bytes") == path.stat().st_size:
            print(
                f"[{size:g} GB] using cached {path.relative_to(PROJECT_DIR)} "
                f"({meta['rows']:,} rows, {meta['bytes'] / 1e9:.2f} GB)",
                flush=True,
            )
            return path, meta
    free = shutil.disk_usage(RESULTS).free
    needed = size * 2**30 * 1.5 + 2e9
    if free < needed:
        raise SystemExit(
            f"not enough disk for a {size:g} GB funnel file: {free / 1e9:.1f} GB free, {needed / 1e9:.1f} GB needed"
        )
    per_year = math.ceil(size * 2**30 / BYTES_PER_ROW / len(YEARS))
    print(
        f"[{size:g} GB] generating {per_year * len(YEARS):,} rows into {path.relative_to(PROJECT_DIR)} ...", flush=True
    )
    started = time.perf_counter()
    olist = olist_folder(seed)
    parts = Path(tempfile.mkdtemp(prefix="funnel-gen-", dir=RESULTS))
    tmp = path.with_suffix(".csv.tmp")
    try:
        with open(tmp, "wb") as out:
            for n, year in enumerate(YEARS):
                generate_funnel(parts, olist, rows_per_file=per_year, years=(year,), seed=seed + year)
                part = parts / f"{year}_funnel.csv"
                with open(part, "rb") as handle:
                    header = handle.readline()
                    if n == 0:
                        out.write(header)
                    shutil.copyfileobj(handle, out, 1 << 24)
                part.unlink()
        os.replace(tmp, path)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
        tmp.unlink(missing_ok=True)
    meta = {
        "rows": per_year * len(YEARS),
        "bytes": path.stat().st_size,
        "months": 12 * len(YEARS),
        "seed": seed,
        "generated_seconds": round(time.perf_counter() - started, 1),
    }
    meta_path.write_text(json.dumps(meta))
    print(f"[{size:g} GB] generated {meta['bytes'] / 1e9:.2f} GB in {meta['generated_seconds']:.0f}s", flush=True)
    return path, meta


# ------------------------------------------------------------------------------------------
# workers: one contender in this (child) process; write a JSON result file
# ------------------------------------------------------------------------------------------
def worker_ours(spec: dict) -> dict:
    from loaders.config import Settings
    from loaders.funnel import convert_file
    from loaders.store import ObjectStore

    settings = Settings(data_dir=Path(spec["work"]), store_url=spec["store"])
    store = ObjectStore(settings.store_url, settings)
    baseline = _status_mb(field="VmRSS")
    started = time.perf_counter()
    report = convert_file(settings, store, spec["name"])
    seconds = time.perf_counter() - started
    return {
        "rows": report.rows_written,
        "rows_read": report.rows_read,
        "rejected": report.rows_rejected,
        "seconds": seconds,
        "partitions": len(report.partitions),
        "bytes_written": report.bytes_written,
        "baseline_rss_mb": baseline,
    }


def worker_duckdb(spec: dict) -> dict:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"""
        COPY (
            SELECT session_id, event_timestamp, event_type, userid, product_id,
                   nullif(category_id, '') AS category_id,
                   '{spec["name"]}' AS source_file, now()::TIMESTAMP AS converted_at,
                   year(event_timestamp) AS year, month(event_timestamp) AS month
            FROM read_csv('{spec["csv"]}', header = true, timestampformat = '{TIMESTAMP_FORMAT}',
                          columns = {{'session_id': 'VARCHAR', 'event_timestamp': 'TIMESTAMP',
                                      'event_type': 'VARCHAR', 'userid': 'VARCHAR',
                                      'product_id': 'VARCHAR', 'category_id': 'VARCHAR'}})
        ) TO '{spec["out"]}' (FORMAT PARQUET, PARTITION_BY (year, month))""")
    seconds = time.perf_counter() - started
    con.close()
    return {"seconds": seconds, "settings": "defaults (threads = cores, memory_limit = 80% of RAM)"}


def worker_spark(spec: dict) -> dict:
    started = time.perf_counter()
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    spark = SparkSession.builder.master("local[2]").appName("bench-funnel").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    jvm_start = time.perf_counter() - started
    job_started = time.perf_counter()
    schema = StructType([StructField(c, StringType()) for c in COLUMNS])
    df = spark.read.csv(spec["csv"], header=True, schema=schema)
    stamp = F.to_timestamp("event_timestamp", SPARK_PATTERN)
    out = (
        df.withColumn("event_timestamp", stamp)
        .withColumn("source_file", F.lit(spec["name"]))
        .withColumn("converted_at", F.current_timestamp())
        .withColumn("year", F.year(stamp))
        .withColumn("month", F.month(stamp))
    )
    out.write.mode("overwrite").partitionBy("year", "month").parquet(spec["out"])
    job = time.perf_counter() - job_started
    tree = _tree_hwm_mb()  # before stop(): the JVM is still alive
    jvm_cpu = _descendants_cpu_s()
    spark.stop()
    return {
        "seconds": time.perf_counter() - started,
        "jvm_start_seconds": jvm_start,
        "job_seconds": job,
        "tree_peak_rss_mb": tree,
        "jvm_cpu_s": jvm_cpu,
    }


def worker_query(spec: dict) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("SELECT 1").fetchall()  # the engine's own first-query start, outside the timing
    started = time.perf_counter()
    rows = con.execute(spec["sql"]).fetchall()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "result": sorted([list(r) for r in rows])}


WORKERS = {"ours": worker_ours, "duckdb": worker_duckdb, "spark": worker_spark, "query": worker_query}


def run_worker(kind: str, spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    result = WORKERS[kind](spec)
    result["vmhwm_mb"] = _status_mb()
    Path(spec["result"]).write_text(json.dumps(result))


# ------------------------------------------------------------------------------------------
# the parent: spawn under /usr/bin/time, collect
# ------------------------------------------------------------------------------------------
def measure(kind: str, spec: dict, work: Path) -> dict:
    spec_path = work / f"{kind}-spec.json"
    spec = {**spec, "result": str(work / f"{kind}-result.json")}
    spec_path.write_text(json.dumps(spec))
    wall, usage = run_timed(
        [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(spec_path)],
        PROJECT_DIR,
        stdout=subprocess.PIPE,
        merge_output=True,
    )
    result = json.loads(Path(spec["result"]).read_text())
    peak = max(usage["peak_rss_mb"], result.get("tree_peak_rss_mb", 0.0))
    usage["cpu_s"] += result.get("jvm_cpu_s", 0.0)  # the JVM is not a waited-for child of the worker
    return {**result, **usage, "peak_rss_mb": peak, "process_seconds": wall}


def parquet_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.parquet"))


def parquet_rows(pattern: str) -> tuple[int, int]:
    """Rows written, and of those the events after noon: a contender that read the 12-hour
    clock as a 24-hour one would have far fewer."""
    import duckdb

    con = duckdb.connect()
    try:
        return con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE hour(event_timestamp) >= 12) FROM read_parquet('{pattern}')"
        ).fetchall()[0]
    finally:
        con.close()


def _summarise(contender: str, size: float, runs: list[dict], csv_bytes: int, note: str | None = None) -> dict:
    seconds = statistics.median(r["seconds"] for r in runs)
    out = {
        "size_gb": size,
        "contender": contender,
        "rows": runs[0]["rows"],
        "runs": len(runs),
        "csv_bytes": csv_bytes,
        "seconds_median": seconds,
        "seconds_all": [round(r["seconds"], 2) for r in runs],
        "mb_per_s": csv_bytes / 1e6 / seconds,
        "mb_per_s_range": [
            csv_bytes / 1e6 / max(r["seconds"] for r in runs),
            csv_bytes / 1e6 / min(r["seconds"] for r in runs),
        ],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "cpu_s_median": statistics.median(r["cpu_s"] for r in runs),
        "process_seconds_median": statistics.median(r["process_seconds"] for r in runs),
        "parquet_bytes": runs[0]["out_bytes"],
        "note": note,
    }
    for key in ("jvm_start_seconds", "job_seconds", "baseline_rss_mb"):
        if key in runs[0]:
            out[key] = statistics.median(r[key] for r in runs)
    return out


# ------------------------------------------------------------------------------------------
# the benchmark, one size
# ------------------------------------------------------------------------------------------
def bench_size(args, size: float, work: Path) -> tuple[list[dict], dict]:
    csv, meta = funnel_file(size, args.seed)
    n_rows, n_bytes = meta["rows"], meta["bytes"]
    contenders = ["ours", "duckdb"]
    spark_note = None
    if args.no_spark or (args.spark_max_gb is not None and size > args.spark_max_gb):
        spark_note = (
            f"PySpark skipped at {size:g} GB (--no-spark)"
            if args.no_spark
            else f"PySpark skipped at {size:g} GB (--spark-max-gb {args.spark_max_gb:g})"
        )
        print(f"  NOTE: {spark_note}", flush=True)
    else:
        contenders.append("spark")
    runs: dict[str, list[dict]] = {c: [] for c in contenders}
    store = work / f"store-{_size_tag(size)}"
    lake_kept = False
    for i in range(args.repeat):
        order = contenders[i % len(contenders) :] + contenders[: i % len(contenders)]  # rotate
        for name in order:
            if name == "spark" and len(runs["spark"]) >= args.spark_repeat:
                continue
            _warm(csv)
            if name == "ours":
                shutil.rmtree(store, ignore_errors=True)
                landing = store / "landing" / "funnel"
                landing.mkdir(parents=True)
                try:
                    os.link(csv, landing / csv.name)  # landed (not timed); nothing copied
                except OSError:
                    shutil.copyfile(csv, landing / csv.name)
                r = measure("ours", {"work": str(work), "store": str(store), "name": csv.name}, work)
                r["out_rows"], r["pm_rows"] = parquet_rows(f"{store}/lake/funnel_events/*/*/*.parquet")
                r["out_bytes"] = parquet_bytes(store / "lake" / "funnel_events")
                lake_kept = True
            else:
                out = work / f"{name}-out"
                shutil.rmtree(out, ignore_errors=True)
                r = measure(name, {"csv": str(csv), "out": str(out), "name": csv.name}, work)
                r["out_rows"], r["pm_rows"] = parquet_rows(f"{out}/*/*/*.parquet")
                r["out_bytes"] = parquet_bytes(out)
                r["rows"] = r["out_rows"]
                shutil.rmtree(out, ignore_errors=True)
            runs[name].append(r)
            extra = (
                f" (JVM start {r['jvm_start_seconds']:.1f}s, job {r['job_seconds']:.1f}s)" if name == "spark" else ""
            )
            print(
                f"  run {i + 1}/{args.repeat} {name:<7} {r['out_rows']:>11,} rows out "
                f"{r['seconds']:7.2f}s {n_bytes / 1e6 / r['seconds']:7.1f} MB/s "
                f"peak {r['peak_rss_mb']:6.0f} MB cpu {r['cpu_s']:5.1f}s{extra}",
                flush=True,
            )
            if r["out_rows"] != n_rows:
                raise RuntimeError(f"{name} wrote {r['out_rows']:,} rows of {n_rows:,}")

    counts = {name: (runs[name][0]["out_rows"], runs[name][0]["pm_rows"]) for name in contenders}
    agree = len(set(counts.values())) == 1
    print(
        f"  sanity: rows written (CSV has {n_rows:,}) / of which after noon: "
        + ", ".join(f"{k} {v:,} / {pm:,}" for k, (v, pm) in counts.items())
        + ("  -> agree" if agree else "  -> DIFFER"),
        flush=True,
    )
    if not agree:
        raise RuntimeError(f"the contenders' outputs differ: {counts}")
    results = [
        _summarise(name, size, runs[name], n_bytes, spark_note if name == "spark" else None) for name in contenders
    ]
    if spark_note:
        results.append({"size_gb": size, "contender": "spark", "skipped": True, "note": spark_note})

    query = bench_query(args, size, csv, store, work) if lake_kept else {}
    shutil.rmtree(store, ignore_errors=True)
    return results, query


def bench_query(args, size: float, csv: Path, store: Path, work: Path) -> dict:
    year, month = QUERY_MONTH
    lake_sql = (
        f"SELECT event_type, count(*) AS events FROM read_parquet("
        f"'{store}/lake/funnel_events/*/*/*.parquet', hive_partitioning = true) "
        f"WHERE year = {year} AND month = {month} GROUP BY event_type"
    )
    csv_sql = (
        f"SELECT event_type, count(*) AS events FROM read_csv('{csv}', header = true, "
        f"timestampformat = '{TIMESTAMP_FORMAT}', columns = {{'session_id': 'VARCHAR', "
        f"'event_timestamp': 'TIMESTAMP', 'event_type': 'VARCHAR', 'userid': 'VARCHAR', "
        f"'product_id': 'VARCHAR', 'category_id': 'VARCHAR'}}) "
        f"WHERE year(event_timestamp) = {year} AND month(event_timestamp) = {month} GROUP BY event_type"
    )
    out: dict[str, Any] = {"size_gb": size, "month": f"{year}-{month:02d}", "lake_sql": lake_sql, "csv_sql": csv_sql}
    for name, sql in (("lake", lake_sql), ("csv", csv_sql)):
        times, result = [], None
        for _ in range(args.query_repeat):
            _warm(csv) if name == "csv" else None
            r = measure("query", {"sql": sql}, work)
            times.append(r["seconds"])
            result = r["result"]
        out[f"{name}_seconds_median"] = statistics.median(times)
        out[f"{name}_seconds_all"] = [round(t, 4) for t in times]
        out[f"{name}_result"] = result
    out["ratio"] = out["csv_seconds_median"] / out["lake_seconds_median"]
    out["results_agree"] = out["lake_result"] == out["csv_result"]
    print(
        f"  one-month query ({out['month']}, events per event_type): lake {out['lake_seconds_median']:.3f}s, "
        f"csv {out['csv_seconds_median']:.2f}s, {out['ratio']:.0f} x; results "
        f"{'agree' if out['results_agree'] else 'DIFFER'} ({sum(n for _, n in out['lake_result']):,} events)",
        flush=True,
    )
    return out


# ------------------------------------------------------------------------------------------
# targets and output
# ------------------------------------------------------------------------------------------
def check_targets(results: list[dict], queries: list[dict]) -> list[dict]:
    checks = []
    by = {(r["size_gb"], r["contender"]): r for r in results}
    for size in sorted({r["size_gb"] for r in results}):
        ours, duck, spark = by[(size, "ours")], by[(size, "duckdb")], by.get((size, "spark"))
        if spark and not spark.get("skipped"):
            ratio = ours["mb_per_s"] / spark["mb_per_s"]
            checks.append(
                {
                    "size_gb": size,
                    "target": f"MB/s >= {TARGET_SPARK_RATIO:g} x PySpark",
                    "value": round(ratio, 1),
                    "met": ratio >= TARGET_SPARK_RATIO,
                }
            )
        else:
            checks.append(
                {
                    "size_gb": size,
                    "target": f"MB/s >= {TARGET_SPARK_RATIO:g} x PySpark",
                    "value": None,
                    "met": None,
                    "note": "PySpark skipped at this size",
                }
            )
        ratio = ours["mb_per_s"] / duck["mb_per_s"]
        checks.append(
            {
                "size_gb": size,
                "target": f"MB/s >= {TARGET_DUCKDB_RATIO:g} x DuckDB",
                "value": round(ratio, 2),
                "met": ratio >= TARGET_DUCKDB_RATIO,
            }
        )
        checks.append(
            {
                "size_gb": size,
                "target": f"peak RSS < {TARGET_PEAK_MB:g} MB",
                "value": round(ours["peak_rss_mb"]),
                "met": ours["peak_rss_mb"] < TARGET_PEAK_MB,
            }
        )
    for q in queries:
        checks.append(
            {
                "size_gb": q["size_gb"],
                "target": f"one-month query >= {TARGET_QUERY_RATIO:g} x faster on the lake than on the CSV",
                "value": round(q["ratio"], 1),
                "met": q["ratio"] >= TARGET_QUERY_RATIO and q["results_agree"],
            }
        )
    return checks


def _fmt_range(r: dict) -> str:
    lo, hi = r["mb_per_s_range"]
    return f"{lo:.1f}-{hi:.1f}" if r["runs"] > 1 else "-"


def print_results(results: list[dict], queries: list[dict], checks: list[dict]) -> None:
    head = (
        f"{'GB':>4} {'contender':<8} {'rows':>11} {'runs':>4} {'s (med)':>8} {'MB/s':>7} {'MB/s range':>12} "
        f"{'peak MB':>8} {'cpu s':>6} {'out MB':>7}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in results:
        if r.get("skipped"):
            print(f"{r['size_gb']:>4g} {r['contender']:<8} skipped: {r['note']}")
            continue
        extra = (
            f"  (JVM start {r['jvm_start_seconds']:.1f}s, job {r['job_seconds']:.1f}s)"
            if "jvm_start_seconds" in r
            else ""
        )
        print(
            f"{r['size_gb']:>4g} {r['contender']:<8} {r['rows']:>11,} {r['runs']:>4} {r['seconds_median']:>8.2f} "
            f"{r['mb_per_s']:>7.1f} {_fmt_range(r):>12} {r['peak_rss_mb']:>8.0f} {r['cpu_s_median']:>6.1f} "
            f"{r['parquet_bytes'] / 1e6:>7.0f}{extra}"
        )
    for q in queries:
        print(
            f"{q['size_gb']:>4g} one-month query {q['month']}: lake {q['lake_seconds_median']:.3f}s, "
            f"csv {q['csv_seconds_median']:.2f}s -> {q['ratio']:.0f} x"
        )
    print("\nTargets (ours):")
    for c in checks:
        state = "n/a " if c["met"] is None else ("MET " if c["met"] else "MISS")
        print(
            f"  {state} {c['size_gb']:>3g} GB  {c['target']:<58} {c['value']}"
            + (f" ({c['note']})" if c.get("note") else "")
        )


def markdown(results: list[dict], queries: list[dict], checks: list[dict]) -> str:
    lines = [
        "| size | contender | rows | runs | seconds (median) | MB/s (median) | MB/s (min-max) | peak RSS MB "
        "| CPU s | Parquet MB | notes |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if r.get("skipped"):
            lines.append(f"| {r['size_gb']:g} GB | {r['contender']} | - | - | - | - | - | - | - | - | {r['note']} |")
            continue
        note = (
            f"JVM start {r['jvm_start_seconds']:.1f} s, job {r['job_seconds']:.1f} s"
            if "jvm_start_seconds" in r
            else ""
        )
        lines.append(
            f"| {r['size_gb']:g} GB | {r['contender']} | {r['rows']:,} | {r['runs']} | "
            f"{r['seconds_median']:.2f} | {r['mb_per_s']:.1f} | {_fmt_range(r)} | "
            f"{r['peak_rss_mb']:,.0f} | {r['cpu_s_median']:.1f} | {r['parquet_bytes'] / 1e6:,.0f} | {note} |"
        )
    if queries:
        lines += [
            "",
            "| size | one-month query | lake (Parquet) s | CSV s | ratio | results agree |",
            "|---:|---|---:|---:|---:|---|",
        ]
        for q in queries:
            lines.append(
                f"| {q['size_gb']:g} GB | {q['month']} events per event_type | "
                f"{q['lake_seconds_median']:.3f} | {q['csv_seconds_median']:.2f} | {q['ratio']:.0f} | "
                f"{'yes' if q['results_agree'] else '**no**'} |"
            )
    lines += ["", "| size | target | measured | met |", "|---:|---|---:|---|"]
    for c in checks:
        met = "n/a" if c["met"] is None else ("yes" if c["met"] else "**no**")
        lines.append(
            f"| {c['size_gb']:g} GB | {c['target']} | {c['value'] if c['value'] is not None else '-'} "
            f"| {met}{' (' + c['note'] + ')' if c.get('note') else ''} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", nargs="+", type=float, default=[1.0, 5.0], help="CSV sizes in GB (2^30 bytes)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of ours and DuckDB per size (median time, max memory)"
    )
    parser.add_argument("--spark-repeat", type=int, default=1, help="runs of PySpark per size")
    parser.add_argument(
        "--spark-max-gb",
        type=float,
        default=None,
        help="skip PySpark for files larger than this (said so in every output)",
    )
    parser.add_argument("--no-spark", action="store_true", help="skip PySpark at every size")
    parser.add_argument("--query-repeat", type=int, default=3, help="runs of each one-month query")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, default=RESULTS / "funnel.json")
    parser.add_argument("--generate-only", action="store_true", help="make (or reuse) the files and stop")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    if args.worker:
        run_worker(*args.worker)
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.generate_only:
        for size in args.sizes:
            funnel_file(size, args.seed)
        return 0
    if not args.no_spark:
        try:
            import pyspark  # noqa: F401
        except ImportError:
            raise SystemExit(
                "pyspark is not installed: .venv/bin/pip install -r bench/requirements.txt (or pass --no-spark)"
            ) from None
    work = Path(tempfile.mkdtemp(prefix="funnel-", dir=RESULTS))
    load_at_start = os.getloadavg()
    results: list[dict] = []
    queries: list[dict] = []
    started = time.perf_counter()
    try:
        for size in args.sizes:
            print(f"\n[{size:g} GB]", flush=True)
            res, query = bench_size(args, size, work)
            results += res
            if query:
                queries.append(query)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")

    checks = check_targets(results, queries)
    print_results(results, queries, checks)
    doc = {
        "command": " ".join([".venv/bin/python", "bench/funnel.py", *sys.argv[1:]]),
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            **_tool_versions(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
        },
        "results": results,
        "queries": queries,
        "targets": checks,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2, default=str))
    md = args.json.with_suffix(".md")
    md.write_text(markdown(results, queries, checks))
    print(f"\nwrote {args.json} and {md}")
    return 0 if all(c["met"] is not False for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
