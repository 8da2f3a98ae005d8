"""Parquet parts into a PostgreSQL table through `COPY ... FROM STDIN` (CSV), written once.

PostgreSQL cannot read Parquet or S3: the loader reads the parts (local or s3:// through the
store's filesystem) with pyarrow and streams them as CSV, one record batch at a time. Every
non-null value is quoted (`quoting_style="all_valid"`), so an unquoted empty field, which is
how pyarrow writes NULL, is only ever NULL and an empty string stays an empty string.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..store import ObjectStore
from .sql import quote

_CSV = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")


def copy_parquet(
    cursor: Any,
    store: ObjectStore,
    paths: Iterable[str],
    target: str,
    batch_rows: int,
    extend: Callable[[str, pa.RecordBatch], pa.RecordBatch] | None = None,
) -> int:
    """Stream every Parquet file in `paths` (store-relative) into the table `target` (already
    quoted); `extend(path, batch)` may add columns per file. Returns the rows copied."""
    rows = 0
    for path in paths:
        with store.fs.open(store.full(path), "rb") as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=batch_rows):
                if extend is not None:
                    batch = extend(path, batch)
                buffer = io.BytesIO()
                pacsv.write_csv(batch, buffer, _CSV)
                buffer.seek(0)
                columns = ", ".join(quote(c) for c in batch.schema.names)
                cursor.copy_expert(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
                rows += batch.num_rows
    return rows
