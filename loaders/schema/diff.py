"""The differences between a source table and its declaration, one `Change` per column.

Kinds of change (docs/architecture.md, contract 12):

* `added`     a source column that is not declared;
* `missing`   a declared column that the source no longer has (dropped, or renamed: a rename
              shows as a `missing` column plus an `added` one, as the catalog cannot tell them
              apart);
* `widened`   the source type holds every value of the declared one (a longer VARCHAR, TEXT,
              INT -> BIGINT, DECIMAL with as many integer digits and as many fraction digits or
              more, INT -> DECIMAL with room for it, INT -> DOUBLE);
* `narrowed`  some declared values no longer fit (shorter strings, BIGINT -> INT, fewer DECIMAL
              digits, numbers to DOUBLE or back);
* `changed`   another kind of type (a string became a number, a date, JSON ...).

Timestamps compare equal whatever their fraction digits: every warehouse keeps microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..declarations import Column, LogicalType, Table
from ..manifest import logical_name
from .inspect import SourceColumn

ChangeKind = Literal["added", "missing", "widened", "narrowed", "changed"]
Verdict = Literal["same", "widened", "narrowed", "changed"]
_STRINGS = ("char", "varchar", "text")
_INTEGER_DIGITS = {"integer": 10, "bigint": 19}  # decimal digits an INT / a BIGINT may need


def _length(t: LogicalType) -> float:
    return float("inf") if t.kind == "text" else float(t.length or 1)


def compare(old: LogicalType, new: LogicalType | None) -> Verdict:
    """How the type `new` relates to `old`: `same`, `widened` (holds every `old` value),
    `narrowed` (a number or string of the same family that may not hold them) or `changed`
    (another family, or a type with no logical counterpart)."""
    if new is None:
        return "changed"
    if old == new:
        return "same"
    a, b = old.kind, new.kind
    if a == "timestamp" or b == "timestamp":
        return "same" if a == b else "changed"
    if a in _STRINGS or b in _STRINGS:
        if not (a in _STRINGS and b in _STRINGS):
            return "changed"
        la, lb = _length(old), _length(new)
        return "same" if la == lb else "widened" if lb > la else "narrowed"
    # numbers: integer, bigint, decimal, double
    if a == b == "decimal":
        int_a, int_b = (old.length or 0) - (old.scale or 0), (new.length or 0) - (new.scale or 0)
        return "widened" if int_b >= int_a and (new.scale or 0) >= (old.scale or 0) else "narrowed"
    if a in _INTEGER_DIGITS and b in _INTEGER_DIGITS:
        return "widened" if _INTEGER_DIGITS[b] >= _INTEGER_DIGITS[a] else "narrowed"
    if a in _INTEGER_DIGITS and b == "decimal":
        return "widened" if (new.length or 0) - (new.scale or 0) >= _INTEGER_DIGITS[a] else "narrowed"
    if a == "decimal" and b in _INTEGER_DIGITS:
        fits = (old.scale or 0) == 0 and (old.length or 0) < _INTEGER_DIGITS[b]
        return "widened" if fits else "narrowed"
    if a == "integer" and b == "double":
        return "widened"  # every 32-bit integer is exact in a double
    return "narrowed"  # bigint or decimal to double, double to an exact type


def type_name(t: LogicalType | None, source_type: str = "") -> str:
    """A type as the declarations spell it, or the source's own spelling when it has none."""
    return logical_name(t) if t is not None else (source_type or "?").upper()


@dataclass(frozen=True)
class Change:
    """One difference between a source table and its declaration."""

    table: str
    column: str
    kind: ChangeKind
    declared: LogicalType | None = None  # the declared type (None: not declared)
    source: SourceColumn | None = None  # the source column (None: missing)

    @property
    def old(self) -> str:
        return type_name(self.declared)

    @property
    def new(self) -> str:
        return type_name(self.source.logical, self.source.source_type) if self.source else "-"

    def describe(self) -> str:
        """The change as a clause: `column 'price': widened from decimal(10,2) to decimal(12,2)`."""
        where = f"table {self.table!r}, column {self.column!r}"
        if self.kind == "added":
            return f"{where}: new in the source ({self.new}), not declared"
        if self.kind == "missing":
            return f"{where} ({self.old}): declared but missing in the source"
        verb = {"widened": "widened", "narrowed": "narrowed", "changed": "type changed"}[self.kind]
        return f"{where}: {verb} in the source from {self.old} to {self.new}"


def same_as_declared(engine: str, declared: LogicalType, column: SourceColumn) -> bool:
    """Whether a source column holds exactly the declared type: its logical type is the declared
    one, or its text is this engine's own spelling of it (SQLite keeps every string and decimal
    as TEXT, integer and bigint as INTEGER)."""
    if column.source_type.strip().upper() == declared.sql(engine).upper():  # type: ignore[arg-type]  # engine is a source engine name
        return True
    return compare(declared, column.logical) == "same"


def diff_table(engine: str, table: Table, source: list[SourceColumn]) -> list[Change]:
    """Every change between the declared `table` and the `source` columns: declared columns in
    declaration order first (missing, widened, narrowed, changed), then added ones in source
    order. Column names compare exactly as the catalog reports them."""
    found = {c.name: c for c in source}
    changes: list[Change] = []
    for col in table.columns:
        src = found.get(col.name)
        if src is None:
            changes.append(Change(table.name, col.name, "missing", col.type, None))
            continue
        if same_as_declared(engine, col.type, src):
            continue
        verdict = compare(col.type, src.logical)
        assert verdict != "same"
        changes.append(Change(table.name, col.name, verdict, col.type, src))
    declared = set(table.column_names)
    changes += [Change(table.name, c.name, "added", None, c) for c in source if c.name not in declared]
    return changes


def effective_columns(table: Table, changes: list[Change]) -> tuple[Column, ...]:
    """The columns an extract reads when the changes evolve: each declared column with its
    widened source type, then each added column (with a logical type) in source order."""
    widened = {c.column: c.source.logical for c in changes if c.kind == "widened" and c.source and c.source.logical}
    columns = [Column(c.name, widened.get(c.name, c.type)) for c in table.columns]
    columns += [
        Column(c.column, c.source.logical) for c in changes if c.kind == "added" and c.source and c.source.logical
    ]
    return tuple(columns)
