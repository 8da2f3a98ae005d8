"""Micro-benchmark of `_row_hash` over Arrow pages: DuckDB (the extract until issue 18) against
pyarrow.compute + hashlib (`arrow_row_hashes`, the extract since).

    nice -n 5 .venv/bin/python bench/row_hash.py --rows 1000000

Builds `--rows` synthetic rows of each declared table (orders, order_items; seeded random
values of the declared types, NULLs in the nullable timestamps), cut into pages of
`--page-rows` (the extractor's 16,384), and hashes every page with each implementation. Prints
CPU seconds (process time) per implementation and table, after one warm-up page each (so the
DuckDB and pandas imports are not counted), and checks that both give the same hashes.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from loaders.declarations import Table, select_tables  # noqa: E402
from loaders.verify import checksum  # noqa: E402


def synthetic_page(table: Table, rows: int, rng: random.Random) -> pa.RecordBatch:
    """`rows` random rows of the declared columns of `table`, typed as the extract conforms them."""
    start = datetime(2016, 1, 1)
    arrays = []
    for c in table.columns:
        k = c.type.kind
        if k in ("char", "varchar", "text"):
            n = min(c.type.length or 12, 32)
            values: list = ["".join(rng.choices("0123456789abcdef", k=n)) for _ in range(rows)]
        elif k in ("integer", "bigint"):
            values = [rng.randint(1, 20) for _ in range(rows)]
        elif k == "decimal":
            values = [Decimal(rng.randint(0, 10**6)).scaleb(-(c.type.scale or 0)) for _ in range(rows)]
        elif k == "double":
            values = [rng.uniform(-1e3, 1e3) for _ in range(rows)]
        else:
            values = [
                None if rng.random() < 0.05 else start + timedelta(seconds=rng.randint(0, 10**8)) for _ in range(rows)
            ]
        arrays.append(pa.array(values, c.type.arrow()))
    schema = pa.schema([pa.field(c.name, c.type.arrow()) for c in table.columns])
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--page-rows", type=int, default=16_384)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for table in select_tables(PROJECT_DIR, ["orders", "order_items"]):
        page = synthetic_page(table, args.page_rows, rng)
        pages = args.rows // args.page_rows
        for name, fn in (("duckdb", checksum.duckdb_row_hashes), ("pyarrow+hashlib", checksum.arrow_row_hashes)):
            fn(page, table.columns)  # warm-up: imports
            started = time.process_time()
            for _ in range(pages):
                fn(page, table.columns)
            cpu = time.process_time() - started
            print(
                f"{table.name:<12} {name:<16} {pages * args.page_rows:>9,} rows  {cpu:6.2f} s CPU  "
                f"{cpu * 1e6 / (pages * args.page_rows):6.2f} s per 1M rows",
                flush=True,
            )
        same = checksum.duckdb_row_hashes(page, table.columns).equals(checksum.arrow_row_hashes(page, table.columns))
        print(f"{table.name:<12} same hashes: {same}", flush=True)


if __name__ == "__main__":
    main()
