"""What computing `_row_hash` at the load costs the load (issue 18: the hash moved from the
extract to the warehouse).

    nice -n 10 .venv/bin/python bench/hash_at_load.py --source mysql://root@127.0.0.1:3306/dwh_hxl_s1

Extracts one table historically from `--source` (once) with the current code, whose parts hold
no `_row_hash`, and writes a copy of that batch as the extract wrote it before (version-1
manifest, `_row_hash` in the parts, computed with `arrow_row_hashes`). Then, for each warehouse
(DuckDB file, PostgreSQL database of its own), loads each copy into an empty raw table, `--repeat`
times, alternating which goes first, and prints the load's wall time (`load_batch`, the stage's
fill, hash, existence check, insert and log in one transaction) and the seconds of the stage's
hash UPDATE alone. The difference of the medians is what the hash at the load costs.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from loaders import layout, pipeline  # noqa: E402
from loaders.config import Settings  # noqa: E402
from loaders.declarations import CHANGE_COLUMNS, ROW_HASH_COLUMN, Table, declared_tables  # noqa: E402
from loaders.extract.batch import new_batch_id  # noqa: E402
from loaders.load.batches import list_batches  # noqa: E402
from loaders.load.loader import ensure_raw_tables, load_batch  # noqa: E402
from loaders.manifest import Part, batch_table, read_manifest, write_manifests  # noqa: E402
from loaders.report import Reporter  # noqa: E402
from loaders.store import ObjectStore  # noqa: E402
from loaders.verify.checksum import arrow_row_hashes  # noqa: E402
from loaders.warehouses import open_warehouse  # noqa: E402


def old_copy(store: ObjectStore, table: Table, folder: str) -> str:
    """A copy of the batch in `folder` with `_row_hash` in its parts (the format before issue 18)."""
    manifest = read_manifest(store, table, folder)
    extracted = batch_table(store, table, folder, manifest)
    copy = layout.batch_dir(table.name, manifest["mode"], new_batch_id())
    parts = []
    for i, part in enumerate(manifest["parts"]):
        data = pq.read_table(store.full(f"{folder}/{part['path']}"))
        hashes = arrow_row_hashes(data.combine_chunks().to_batches()[0], extracted.columns)
        at = data.schema.get_field_index("_op") + 1
        data = data.add_column(at, pa.field(ROW_HASH_COLUMN, pa.string()), [hashes])
        path = layout.batch_part(copy, i)
        sink = store.open_part(path)
        pq.write_table(data, sink, compression="snappy")
        sink.close()
        parts.append(Part(path, data.num_rows, sink.bytes, sink.sha256))
    old = {
        **manifest,
        "version": 1,
        "batch_id": copy.rsplit("=", 1)[1],
        "change_columns": list(CHANGE_COLUMNS),
        "parts": [{**asdict(p), "path": p.path.rsplit("/", 1)[1]} for p in parts],
    }
    write_manifests(store, copy, old, parts)
    return copy


def timed_load(settings: Settings, store: ObjectStore, table: Table, folder: str) -> tuple[float, float, int]:
    """Load `folder` into an empty raw table: (load seconds, hash UPDATE seconds, rows inserted)."""
    wh = open_warehouse(settings, store)
    with wh:
        ensure_raw_tables(wh, [table])
        execute, spent = wh.execute, [0.0]

        def timing(sql: str) -> list[tuple]:
            started = time.perf_counter()
            try:
                return execute(sql)
            finally:
                if sql.startswith(f"UPDATE {wh.stage_name(table)} SET"):
                    spent[0] += time.perf_counter() - started

        wh.execute = timing  # type: ignore[method-assign]  # a timing wrapper for this run only
        started = time.perf_counter()
        report = load_batch(wh, table, folder)
        seconds = time.perf_counter() - started
        wh.execute = execute  # type: ignore[method-assign]  # times each statement: a wrapper on this instance only
        wh.execute(f"DROP TABLE {wh.raw_name(table.name)}")
        wh.execute(f"DROP TABLE {wh.raw_name('_load_log')}")
    return seconds, spent[0], report.rows_inserted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="source URL holding the table (e.g. a bench/extract database)")
    parser.add_argument("--table", default="orders")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warehouses", nargs="+", default=["duckdb", "postgres"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hash_at_load_"))
    pg_database = f"dwh_hxl_load_{secrets.token_hex(3)}"
    import psycopg2

    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    try:
        base = Settings(data_dir=work, source_url=args.source)
        table = declared_tables(base.project_dir)[args.table]
        pipeline.extract(base, Reporter(echo=lambda line: None), "historical", [args.table])
        store = ObjectStore(base.store_url, base)
        new = list_batches(store, table)[-1][1]
        old = old_copy(store, table, new)
        rows = read_manifest(store, table, new)["row_count"]
        print(f"{args.table}: {rows:,} rows; parts {store.uri(new)} (no hash), {store.uri(old)} (with hash)")
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{pg_database}"')
        for engine in args.warehouses:
            settings = base.with_(warehouse=engine, pg_database=pg_database)
            times: dict[str, list[tuple[float, float, int]]] = {"hash in the parts": [], "hash at the load": []}
            for i in range(args.repeat):
                order = [("hash in the parts", old), ("hash at the load", new)]
                for name, folder in order if i % 2 == 0 else order[::-1]:
                    seconds, update, inserted = timed_load(settings, store, table, folder)
                    times[name].append((seconds, update, inserted))
                    print(f"  {engine} run {i + 1} {name}: {seconds:.2f}s (UPDATE {update:.2f}s)", flush=True)
            for name, runs in times.items():
                assert all(r[2] == rows for r in runs), runs
                print(
                    f"{engine:8s} {name:18s} load median {statistics.median(r[0] for r in runs):.2f}s "
                    f"(runs {', '.join(f'{r[0]:.2f}' for r in runs)}); hash UPDATE median "
                    f"{statistics.median(r[1] for r in runs):.2f}s"
                )
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
        admin.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
