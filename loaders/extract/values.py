"""Values the extract refuses, named by table, column, key and value (contract 13, kind 1).

A source database may hold what a later stage cannot represent: SQLite keeps any text in a
TIMESTAMP or INTEGER column and has no string lengths; MySQL keeps NUL characters that
PostgreSQL refuses. The extract is the earliest stage that sees such a row after the source
load, so it stops the table there, with one line naming the row, instead of letting a warehouse
refuse the batch (or a driver print a panic). The table's watermark stays; once the row is
fixed in the source, the next run extracts it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..declarations import Table
from .parts import ExtractError


def key_of(batch: pa.RecordBatch, table: Table, index: int) -> str:
    """The primary key of row `index` of a batch as `name='value', ...`."""
    return ", ".join(f"{k}={batch.column(k)[index].as_py()!r}" for k in table.primary_key if k in batch.schema.names)


def refuse(table: Table, column: str, key: str, value: object, reason: str) -> ExtractError:
    """The one-line error for a value the extract refuses."""
    shown = repr(value if not isinstance(value, str) or len(value) <= 60 else value[:60] + "...")
    return ExtractError(
        f"table {table.name!r}, column {column!r}, key ({key}): {shown} {reason}; "
        "fix the row in the source: the next run extracts the table again"
    )


def check_strings(batch: pa.RecordBatch, table: Table) -> None:
    """Refuse a NUL character in any text, and a char(n)/varchar(n) value over n characters."""
    for c in table.columns:
        if not c.type.is_string:
            continue
        column = batch.column(c.name)
        if _may_hold_nul(column) and pc.any(nul := pc.match_substring(column, "\x00")).as_py():
            i = pc.index(nul, True).as_py()
            raise refuse(
                table, c.name, key_of(batch, table, i), column[i].as_py(), "contains a NUL (PostgreSQL cannot store it)"
            )
        if c.type.kind in ("char", "varchar") and c.type.length and _max_bytes(column) > c.type.length:
            longer = pc.greater(pc.utf8_length(column), c.type.length)
            if pc.any(longer).as_py():
                i = pc.index(longer, True).as_py()
                raise refuse(
                    table,
                    c.name,
                    key_of(batch, table, i),
                    column[i].as_py(),
                    f"is longer than its declared {c.type.kind}({c.type.length})",
                )


def first_uncastable(column: pa.Array, target: pa.DataType) -> int | None:
    """The index of the first value of `column` that does not cast safely to `target`."""
    for i in range(len(column)):
        try:
            column.slice(i, 1).cast(target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return i
    return None


def _may_hold_nul(column: pa.Array) -> bool:
    """A fast scan of the string data buffer for a NUL byte (its minimum, zero-copy; the buffer
    of a sliced array may hold bytes of other rows: the exact search follows only on a hit)."""
    buffers = column.buffers()
    if len(buffers) < 3 or buffers[2] is None or buffers[2].size == 0:
        return False
    return int(np.frombuffer(buffers[2], dtype=np.uint8).min()) == 0


def _max_bytes(column: pa.Array) -> int:
    """The longest value in bytes (a bound on its length in characters), 0 when all are NULL."""
    longest = pc.max(pc.binary_length(column)).as_py()
    return int(longest or 0)
