"""Checking parsed rows against the declaration and typing them (docs/architecture.md, contract 6).

The checks come from models/staging/funnel/_funnel__sources.yml: a timestamp's `format` (the
12-hour pattern `%m/%d/%Y %I:%M %p`: parsing it as a 24-hour clock shifts every afternoon
event by 12 hours), `accepted_values`, `required` (not empty) and every string's declared
length. A row that fails goes to the rejects with its line number and the first failed check's
reason, in that order: formats and values, then lengths; the kernels are vectorised (pyarrow).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from ..declarations import FunnelColumn, FunnelDeclaration
from .rejects import BlockRejects

_DATE = re.compile(r"\s*(\d{1,2})/(\d{1,2})/(\d{4})\b")
_DAY_TEXT = pa.array(["00", "01", "02", "03"])


class Checks:
    """The declaration's checks and output schema, built once per declaration."""

    def __init__(self, declaration: FunnelDeclaration):
        self.columns = declaration.file_columns
        self.header = declaration.header
        self.schema = pa.schema([pa.field(c.name, c.type.arrow()) for c in self.columns])
        self.accepted = {c.name: pa.array(c.accepted_values, pa.string()) for c in self.columns if c.accepted_values}
        self.timestamps = [c for c in self.columns if c.format]
        self.lengths = [c for c in self.columns if c.length is not None]


@cache
def checks_of(declaration: FunnelDeclaration) -> Checks:
    """The checks of a declaration (built once per declaration and process)."""
    return Checks(declaration)


def without_rolled_over_dates(text: pa.ChunkedArray, stamps: pa.ChunkedArray) -> pa.ChunkedArray:
    """The timestamps, null where the text names a day that does not exist.

    pyarrow's strptime rolls a day past the end of its month over into the next month
    (02/30/2016 becomes 2016-03-01) where Python's refuses it. A rolled-over result falls on
    day 1, 2 or 3; for those rows only (a tenth), the day must read back as written (DD at
    offset 3), and the few that do not (a day that does not exist, or a date written without
    zero padding) are checked with `datetime`.
    """
    days = pc.day(stamps)
    suspect = pc.fill_null(pc.less_equal(days, 3), False)
    if not pc.any(suspect).as_py():
        return stamps
    rows = pc.indices_nonzero(suspect)
    written = pc.utf8_slice_codeunits(text.take(rows), 3, 5)
    read_back = _DAY_TEXT.take(days.take(rows))
    differ = pc.indices_nonzero(pc.fill_null(pc.not_equal(written, read_back), True))
    if not len(differ):
        return stamps
    impossible = []
    for row in rows.take(differ).to_pylist():
        match = _DATE.match(text[row].as_py())
        if match:
            month, day, year = (int(g) for g in match.groups())
            try:
                datetime(year, month, day)
            except ValueError:
                impossible.append(row)
    if not impossible:
        return stamps
    mask = [False] * len(stamps)
    for row in impossible:
        mask[row] = True
    return pc.if_else(pa.array(mask), pa.scalar(None, stamps.type), stamps)


def _too_long(values: pa.ChunkedArray, column: FunnelColumn) -> pa.ChunkedArray | None:
    """Rows longer than the declared length in characters, or None when none is (checked first
    on bytes, which is cheaper: no value has more characters than bytes)."""
    limit = column.length
    assert limit is not None
    longest = pc.max(pc.binary_length(values)).as_py()
    if longest is None or longest <= limit:
        return None
    return pc.greater(pc.utf8_length(values), limit)


def validate(
    table: pa.Table, first_line: int, line_numbers: pa.Array | None, rejects: BlockRejects, checks: Checks
) -> pa.Table:
    """Typed, valid rows (the file's columns as declared, `checks.schema`); the others go to the
    rejects with their line number and reason."""
    stamps = {}
    for column in checks.timestamps:
        parsed = pc.strptime(table[column.name], format=column.format, unit="us", error_is_null=True)
        stamps[column.name] = without_rolled_over_dates(table[column.name], parsed)
    failed: list[tuple[str, pa.ChunkedArray]] = []
    for column in checks.columns:
        if column.name in stamps:
            failed.append((str(column.reject_reason), pc.is_null(stamps[column.name])))
        if column.name in checks.accepted:
            failed.append(
                (
                    str(column.reject_reason),
                    pc.invert(pc.is_in(table[column.name], value_set=checks.accepted[column.name])),
                )
            )
        if column.required:
            failed.append((f"empty_{column.name}", pc.equal(table[column.name], "")))
    for column in checks.lengths:
        mask = _too_long(table[column.name], column)
        if mask is not None:
            failed.append((column.too_long_reason, mask))
    bad = failed[0][1] if failed else None
    for _, mask in failed[1:]:
        bad = pc.or_(bad, mask)
    if bad is not None and pc.any(bad).as_py():
        taken = pa.array([False] * table.num_rows)
        for reason, mask in failed:
            new = pc.and_(mask, pc.invert(taken))
            rows = pc.indices_nonzero(new)
            numbers = (pc.add(rows, first_line) if line_numbers is None else line_numbers.take(rows)).to_pylist()
            for line, row in zip(numbers, table.take(rows).to_pylist(), strict=True):
                rejects.add(line, reason, ",".join(row[c] for c in checks.header))
            taken = pc.or_(taken, mask)
        keep = pc.invert(bad)
        table = table.filter(keep)
        stamps = {name: s.filter(keep) for name, s in stamps.items()}
    out = []
    for column in checks.columns:
        values = stamps.get(column.name, table[column.name])
        if column.empty_as_null:
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        out.append(values)
    return pa.table(out, schema=checks.schema)
