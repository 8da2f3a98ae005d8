"""Values the extract refuses, named by table, column, key and value (contract 13, kind 1).

A source database may hold what a later stage cannot represent: SQLite keeps any text in a
TIMESTAMP or INTEGER column and has no string lengths; MySQL keeps NUL characters that
PostgreSQL refuses. The extract is the earliest stage that sees such a row after the source
load, so it stops the table there, with one line naming the row, instead of letting a warehouse
refuse the batch (or a driver print a panic). The table's watermark stays; once the row is
fixed in the source, the next run extracts it.

A column the source widened (loaders/schema/policy.py, `evolve`) is read with the source's type,
but its values must still fit the DECLARED type, which staging casts to (`check_declared`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..declarations import LogicalType, Table
from ..schema import SchemaChangeError, SchemaPlan
from ..schema.policy import value_stop_line
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


def check_declared(batch: pa.RecordBatch, plan: SchemaPlan) -> None:
    """Refuse the first value of a widened column (`plan.widened`) that does not fit the column's
    declared type: a string longer than the declared char(n)/varchar(n) (in characters), a number
    outside the declared integer's range, a decimal with more integer or fraction digits than
    declared, a fraction in a declared integer. `batch` is conformed to `plan.table` (the
    source's types). Raises SchemaChangeError with `value_stop_line`'s one line."""
    for change in plan.widened:
        declared = change.declared
        if declared is None or change.column not in batch.schema.names:
            continue
        column = batch.column(change.column)
        i = _first_not_fitting(column, declared)
        if i is not None:
            key = key_of(batch, plan.table, i)
            raise SchemaChangeError(value_stop_line(change, key, column[i].as_py()), plan)


def _first_not_fitting(column: pa.Array, declared: LogicalType) -> int | None:
    """The index of the first value of `column` that the logical type `declared` cannot hold."""
    if declared.is_string:
        if declared.kind == "text" or not declared.length or _max_bytes(column) <= declared.length:
            return None
        longer = pc.greater(pc.utf8_length(column), declared.length)
        return pc.index(longer, True).as_py() if pc.any(longer).as_py() else None
    target = declared.arrow()
    try:
        column.cast(target, safe=True)
        return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return first_uncastable(column, target)


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
