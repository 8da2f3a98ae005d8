"""TEMPORARY stand-in for issue 12's change columns until branch i12-deletes is merged:
`with_change_columns` with the same signature as i12's loaders/extract/parts.py (removed at the merge)."""

from __future__ import annotations

import hashlib

import pyarrow as pa

from ..declarations import Table

CHANGE_COLUMNS = ("_op", "_row_hash", "_change_seq")


def part_schema(table: Table) -> pa.Schema:
    return pa.schema(
        [
            *table.arrow_schema(),
            pa.field("_op", pa.string()),
            pa.field("_row_hash", pa.string()),
            pa.field("_change_seq", pa.int64()),
        ]
    )


def _text(value: object) -> str:
    if value is None:
        return "n"
    if hasattr(value, "strftime"):
        return ":" + value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return ":" + str(value)


def with_change_columns(batch: pa.RecordBatch, table: Table, op: str, first_seq: int) -> pa.RecordBatch:
    n = batch.num_rows
    rows = batch.to_pylist()
    hashes = [hashlib.md5("\x1f".join(_text(r[c]) for c in table.column_names).encode()).hexdigest() for r in rows]
    arrays = [
        *batch.columns,
        pa.array([op] * n, pa.string()),
        pa.array(hashes, pa.string()),
        pa.array(range(first_seq, first_seq + n), pa.int64()),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=part_schema(table))
