"""`dwh verify`: the source compared with the warehouse's latest versions, range by range.

Per table: the warehouse's latest version of every key (the ranking of
macros/latest_version.sql, tombstones dropped) is put in a temporary table with the key and the
row hash computed by the warehouse from the declared columns (loaders/verify/checksum.py). The
first primary-key column is cut into ranges at quantiles of the warehouse's keys; for each
range both sides return a row count and the sum of the hash prefixes (one index range scan on
the source). Equal ranges are done; a differing range is cut again (16 ways) until it holds at
most `fetch_rows` (2,000) rows, whose keys and hashes are then fetched from both sides and compared.
Rows whose source cursor is at or after the last extract's upper bound are in flight: counted
apart, not differences. Memory holds one range's keys at most.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..declarations import OP_COLUMN, OP_DELETE, Table
from ..load.statements import latest_versions_sql
from ..sources import SourceEngine
from ..warehouses import Warehouse, literal, quote
from .checksum import bucket_sum_sql, hash_int_sql, row_hash_sql

LATEST = "verify_latest"
FIRST_RANGES = 64
SPLIT = 16


@dataclass
class TableDiff:
    """What `dwh verify` found for one table. Keys are tuples of the primary key values."""

    table: str
    source_rows: int = 0
    warehouse_rows: int = 0
    missing: list[tuple] = field(default_factory=list)  # in the source, not in the warehouse
    extra: list[tuple] = field(default_factory=list)  # in the warehouse, deleted in the source
    changed: list[tuple] = field(default_factory=list)  # both, different content
    in_flight: int = 0  # changed in the source after the last extract's upper bound
    ranges: int = 0  # range checksums compared
    source_bytes: int = 0  # an estimate: rows fetched x row width, plus 16 bytes per range
    seconds: float = 0.0
    upper: datetime | None = None

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    def summary(self, examples: int = 5) -> str:
        """One line: counts and up to `examples` keys per kind of difference."""

        def keys(found: list[tuple]) -> str:
            shown = ", ".join("/".join(str(v) for v in k) for k in found[:examples])
            return f" ({shown}{', ...' if len(found) > examples else ''})" if found else ""

        verdict = "equal" if self.equal else "DIFFERENT"
        return (
            f"{self.table}: {verdict}; source {self.source_rows:,} rows, warehouse {self.warehouse_rows:,}; "
            f"missing {len(self.missing)}{keys(self.missing)}, extra {len(self.extra)}{keys(self.extra)}, "
            f"changed {len(self.changed)}{keys(self.changed)}; in flight {self.in_flight}; "
            f"{self.ranges} ranges, ~{self.source_bytes / 1e6:.1f} MB read from the source, {self.seconds:.1f}s"
        )


def _prepare_warehouse(wh: Warehouse, table: Table) -> None:
    """The warehouse's latest versions (no tombstones) as a temporary table of key and hash."""
    cols = [quote(c) for c in table.column_names]
    keys = ", ".join(quote(k) for k in table.primary_key)
    wh.execute(f"DROP TABLE IF EXISTS {quote(LATEST)}")
    wh.execute(
        f"CREATE TEMPORARY TABLE {quote(LATEST)} AS SELECT {keys}, {quote(table.cursor)} AS _cursor, "
        f"{row_hash_sql(wh.name, table.columns, 'l')} AS _hash FROM ({latest_versions_sql(wh, table, cols)}) AS l "
        f"WHERE COALESCE(l.{quote(OP_COLUMN)}, 'r') <> {literal(OP_DELETE)} ORDER BY {keys}"
    )  # in key order: each range query then reads only the blocks of its range (zone maps)


def _where(first: str, lo: object, hi: object, lit: Callable[[object], str]) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{first} >= {lit(lo)}")
    if hi is not None:
        parts.append(f"{first} < {lit(hi)}")
    return " AND ".join(parts) or "1 = 1"


class _Sides:
    """The two sides' SQL for one table."""

    def __init__(self, engine: SourceEngine, wh: Warehouse, table: Table, upper: datetime | None):
        self.engine, self.wh, self.table, self.upper = engine, wh, table, upper
        self.src_table = engine.quote(table.name)
        self.src_first = engine.quote(table.primary_key[0])
        self.src_hash = row_hash_sql(engine.name, table.columns)
        self.wh_first = quote(table.primary_key[0])
        self.width = 40 + sum(8 if c.type.kind != "text" and not c.type.is_string else 24 for c in table.columns)

    def wh_literal(self, value: object) -> str:
        if isinstance(value, datetime):
            return f"CAST({literal(value.strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMP)"
        return literal(value)

    def source_sums(self, lo: object, hi: object) -> tuple[int, int]:
        where = _where(self.src_first, lo, hi, self.engine.literal)
        count, total = self.engine.execute(
            f"SELECT count(*), {bucket_sum_sql(self.engine.name, self.src_hash)} FROM {self.src_table} WHERE {where}"
        )[0]
        return int(count), int(total or 0)

    def warehouse_sums(self, lo: object, hi: object) -> tuple[int, int]:
        where = _where(self.wh_first, lo, hi, self.wh_literal)
        count, total = self.wh.execute(
            f"SELECT count(*), {bucket_sum_sql(self.wh.name, '_hash')} FROM {quote(LATEST)} WHERE {where}"
        )[0]
        return int(count), int(total or 0)

    def cuts(self, lo: object, hi: object, parts: int) -> list[object]:
        """Values of the first key column that cut [lo, hi) into about `parts` ranges of similar
        size, read from the warehouse's (and, where it has none, the source's) keys."""
        where = _where(self.wh_first, lo, hi, self.wh_literal)
        rows = self.wh.execute(
            f"SELECT k FROM (SELECT {self.wh_first} AS k, ROW_NUMBER() OVER (ORDER BY {self.wh_first}) AS n, "
            f"count(*) OVER () AS c FROM (SELECT DISTINCT {self.wh_first} FROM {quote(LATEST)} WHERE {where}) AS d) "
            f"AS q WHERE n > 1 AND MOD(n - 1, GREATEST(CAST(c / {parts} AS BIGINT), 1)) = 0 ORDER BY k"
        )
        return [r[0] for r in rows]

    def source_rows(self, lo: object, hi: object) -> dict[tuple, tuple[str, object]]:
        keys = ", ".join(self.engine.quote(k) for k in self.table.primary_key)
        cursor = self.engine.quote(self.table.cursor)
        where = _where(self.src_first, lo, hi, self.engine.literal)
        n = len(self.table.primary_key)
        return {
            tuple(r[:n]): (r[n], r[n + 1])
            for r in self.engine.execute(
                f"SELECT {keys}, {self.src_hash}, {cursor} FROM {self.src_table} WHERE {where}"
            )
        }

    def warehouse_rows(self, lo: object, hi: object) -> dict[tuple, str]:
        keys = ", ".join(quote(k) for k in self.table.primary_key)
        where = _where(self.wh_first, lo, hi, self.wh_literal)
        n = len(self.table.primary_key)
        return {tuple(r[:n]): r[n] for r in self.wh.execute(f"SELECT {keys}, _hash FROM {quote(LATEST)} WHERE {where}")}


def _in_flight(cursor: object, upper: datetime | None) -> bool:
    if upper is None or cursor is None:
        return False
    if isinstance(cursor, str):
        cursor = datetime.fromisoformat(cursor)
    return isinstance(cursor, datetime) and cursor >= upper


def _normal(key: tuple) -> tuple:
    return tuple(v.rstrip() if isinstance(v, str) else v for v in key)


def verify_table(
    engine: SourceEngine, wh: Warehouse, table: Table, upper: datetime | None, fetch_rows: int = 2000
) -> TableDiff:
    """Compare one table; `upper` is the last extract's upper bound (rows whose source cursor is
    at or after it are in flight). Returns the differences with every differing key."""
    started = time.perf_counter()
    diff = TableDiff(table.name, upper=upper)
    _prepare_warehouse(wh, table)
    sides = _Sides(engine, wh, table, upper)
    edges = [None, *sides.cuts(None, None, FIRST_RANGES), None]
    todo = list(zip(edges, edges[1:], strict=False))
    while todo:
        lo, hi = todo.pop()
        src, dst = sides.source_sums(lo, hi), sides.warehouse_sums(lo, hi)
        diff.ranges += 1
        diff.source_bytes += 16
        diff.source_rows += src[0] if (lo, hi) in zip(edges, edges[1:], strict=False) else 0
        diff.warehouse_rows += dst[0] if (lo, hi) in zip(edges, edges[1:], strict=False) else 0
        if src == dst:
            continue
        if max(src[0], dst[0]) > fetch_rows:
            inner = [c for c in sides.cuts(lo, hi, SPLIT) if c != lo]
            if inner:
                bounds = [lo, *inner, hi]
                todo.extend(zip(bounds, bounds[1:], strict=False))
                continue
        source = {_normal(k): v for k, v in sides.source_rows(lo, hi).items()}
        warehouse = {_normal(k): v for k, v in sides.warehouse_rows(lo, hi).items()}
        diff.source_bytes += len(source) * sides.width
        for key, (digest, cursor) in source.items():
            if key in warehouse and warehouse[key] == digest:
                continue
            if _in_flight(cursor, upper):
                diff.in_flight += 1
            elif key in warehouse:
                diff.changed.append(key)
            else:
                diff.missing.append(key)
        diff.extra.extend(k for k in warehouse if k not in source)
    for found in (diff.missing, diff.extra, diff.changed):
        found.sort(key=lambda k: tuple(str(v) for v in k))
    wh.execute(f"DROP TABLE IF EXISTS {quote(LATEST)}")
    diff.seconds = time.perf_counter() - started
    return diff


__all__ = ["TableDiff", "hash_int_sql", "verify_table"]
