"""The SELECTs of an extract, built from parts (columns, table, hint, conditions, order, limit).

Historical: every row, whatever its cursor, read as key ranges page by page (keyset pagination
in storage order): the batch is a snapshot of the table's keys, so the load can write a tombstone
for every key the warehouse holds and the snapshot lacks (contract 8). A row changed while the
snapshot is read comes again, deduplicated by its row hash, with the next current extract. Current: the cursor window
`cursor >= watermark - lookback AND cursor < upper`, in cursor order. NULL cursors: a row whose
cursor is NULL is taken by historical extracts only (the declared cursors are NOT NULL and kept
by the database, so this only matters for hand-made tables).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ..declarations import Table
from ..sources import SourceEngine


@dataclass(frozen=True)
class Select:
    """One SELECT, rendered by `sql()`; identifiers and literals are already quoted."""

    columns: tuple[str, ...]
    table: str
    hint: str = ""
    where: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()
    limit: int | None = None

    def sql(self) -> str:
        parts = [f"SELECT {', '.join(self.columns)} FROM {self.table}"]
        if self.hint:
            parts[0] += f" {self.hint}"
        if self.where:
            parts.append("WHERE " + " AND ".join(self.where))
        if self.order_by:
            parts.append("ORDER BY " + ", ".join(self.order_by))
        if self.limit is not None:
            parts.append(f"LIMIT {int(self.limit)}")
        return " ".join(parts)


@dataclass
class KeyRange:
    """One of the parallel key ranges of a historical extract, read page after page."""

    start: object | None
    end: object | None
    after: tuple | None = None  # the page key of the last row read
    done: bool = False


def extract_select(
    engine: SourceEngine, table: Table, lower: datetime | None, upper: datetime, zero_dates: bool = True
) -> Select:
    """The SELECT of an extract: historical (`lower` None: every row, a snapshot) or current
    (the cursor window, in cursor order). `zero_dates=False` selects the plain columns."""
    cursor = engine.quote(table.cursor)
    columns = tuple(engine.select_expression(table, c, zero_dates) for c in table.column_names)
    if lower is None:
        return Select(columns, engine.quote(table.name))
    where = (f"{cursor} >= {engine.timestamp_literal(lower)}", f"{cursor} < {engine.timestamp_literal(upper)}")
    return Select(columns, engine.quote(table.name), where=where, order_by=(cursor,))


def build_query(
    engine: SourceEngine, table: Table, lower: datetime | None, upper: datetime, zero_dates: bool = True
) -> str:
    """`extract_select(...)` as SQL text."""
    return extract_select(engine, table, lower, upper, zero_dates).sql()


def page_query(
    engine: SourceEngine, table: Table, upper: datetime, key_range: KeyRange, page_rows: int, zero_dates: bool = True
) -> str:
    """The next page of one key range: keyset pagination in storage order, so each page is a
    short index range scan that starts where the previous one stopped."""
    keys = engine.page_key(table)
    base = extract_select(engine, table, None, upper, zero_dates)
    extra = tuple(f"{expr} AS {engine.quote(alias)}" for expr, alias in keys if alias not in table.column_names)
    where = list(base.where)
    first = keys[0][0]
    if key_range.start is not None:
        where.append(f"{first} >= {engine.literal(key_range.start)}")
    if key_range.end is not None:
        where.append(f"{first} < {engine.literal(key_range.end)}")
    if key_range.after is not None:
        # (k1, k2) > (a, b), spelled out: MariaDB does not use an index for row comparisons
        ors = []
        for i in range(len(keys)):
            equal = [f"{keys[j][0]} = {engine.literal(key_range.after[j])}" for j in range(i)]
            ors.append("(" + " AND ".join([*equal, f"{keys[i][0]} > {engine.literal(key_range.after[i])}"]) + ")")
        where.append("(" + " OR ".join(ors) + ")")
    return replace(
        base,
        columns=base.columns + extra,
        hint=engine.page_index_hint(),
        where=tuple(where),
        order_by=tuple(e for e, _ in keys),
        limit=page_rows,
    ).sql()
