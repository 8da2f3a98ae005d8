"""`dwh verify`: the source compared with the warehouse's latest versions, bucket by bucket.

Every key falls in a bucket: the first d hex digits of the MD5 of the key columns' canonical
text (`key_bucket_sql`, the same on every engine and independent of collations and storage
order). d grows with the table (about 32 rows per bucket, capped at 16^4 = 65,536 buckets:
the grouped results stay small whatever the table size). Per table:

1. One grouped query per side: `SELECT bucket, count(*), SUM(<row hash prefix>) ... GROUP BY
   bucket` on the source table, and on the warehouse over its latest versions (the ranking of
   macros/latest_version.sql, tombstones dropped) with the row hash computed by the warehouse
   from the loaded declared columns (loaders/verify/checksum.py). Equal tables: done, one scan
   of each side.
2. For the buckets whose (count, sum) differ: one more query per side returns key, row hash
   (and, on the source, the cursor) of the rows of those buckets only (`WHERE bucket IN
   (...)`, FETCH_CHUNK buckets per query; on the warehouse the filter is applied to raw before
   the ranking), compared in memory. A differing bucket of more than `fetch_rows` rows is
   grouped again by two more digits first.
3. Rows whose source cursor is at or after the last extract's upper bound are in flight:
   counted apart, not differences.

The two sides run at the same time (the warehouse's query on a worker thread): they are
different servers, so a round costs the slower of the two, not the sum. Why buckets by key
hash and not key ranges (the first version): one grouped query costs about one scan, where 64
range queries cost ~100 ms each plus one per recursion, and 0.1% of rows changed uniformly
touched nearly every range (BENCHMARKS.md, bench/verify).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TypeVar

from ..declarations import OP_COLUMN, OP_DELETE, Table
from ..load.statements import latest_versions_sql
from ..sources import SourceEngine
from ..warehouses import Warehouse, literal, quote
from .checksum import hash_int_sql, key_bucket_sql, row_hash_sql

BUCKET_ROWS = 32  # the target of rows per bucket at the first level
MAX_DIGITS = 4  # 16^4 buckets at most at the first level: memory flat in the table size
REFINE_DIGITS = 2  # a differing bucket of more than fetch_rows rows splits 256 ways
FETCH_ROWS = 2000
FETCH_CHUNK = 10000  # buckets per `IN (...)` list
HASH_DIGITS = 32

T = TypeVar("T")
U = TypeVar("U")


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
    ranges: int = 0  # bucket checksums compared (the log column keeps its first name)
    source_bytes: int = 0  # an estimate: 24 bytes per bucket, plus rows fetched x row width
    seconds: float = 0.0
    upper: datetime | None = None
    queries: int = 0  # queries per side
    source_seconds: float = 0.0  # time in the source's queries (they overlap the warehouse's)
    warehouse_seconds: float = 0.0

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
            f"{self.ranges:,} buckets, ~{self.source_bytes / 1e6:.1f} MB read from the source, {self.seconds:.1f}s"
        )


def bucket_digits(rows: int, bucket_rows: int = BUCKET_ROWS, max_digits: int = MAX_DIGITS) -> int:
    """Hex digits of the first-level bucket for a table of about `rows` rows: the fewest
    giving at most `bucket_rows` rows per bucket, between 1 and `max_digits`."""
    if rows <= bucket_rows * 16:
        return 1
    return min(max_digits, math.ceil(math.log(rows / bucket_rows, 16)))


Sums = dict[str, tuple[int, int]]


class _Sides:
    """The two sides' SQL for one table."""

    def __init__(self, engine: SourceEngine, wh: Warehouse, table: Table):
        self.engine, self.wh, self.table = engine, wh, table
        self.key_columns = [table.column(k) for k in table.primary_key]
        self.src_table = engine.quote(table.name)
        self.src_keys = ", ".join(engine.quote(k) for k in table.primary_key)
        self.src_hash = row_hash_sql(engine.name, table.columns)
        self.wh_keys = ", ".join(f"l.{quote(k)}" for k in table.primary_key)
        self.width = 40 + sum(8 if c.type.kind != "text" and not c.type.is_string else 24 for c in table.columns)

    @staticmethod
    def _in(bucket: str, prefixes: Iterable[str]) -> str:
        return f"{bucket} IN ({', '.join(literal(p) for p in prefixes)})"

    def source_sums(self, digits: int, within: list[str], within_digits: int) -> Sums:
        """Per bucket of `digits` digits (inside the buckets `within`, when given): count, sum."""
        bucket = key_bucket_sql(self.engine.name, self.key_columns, digits)
        where = f" WHERE {self._in(key_bucket_sql(self.engine.name, self.key_columns, within_digits), within)}"
        rows = self.engine.execute(
            f"SELECT {bucket} AS b, count(*), SUM({hash_int_sql(self.engine.name, self.src_hash)}) "
            f"FROM {self.src_table}{where if within else ''} GROUP BY b"
            + (" ORDER BY NULL" if self.engine.name == "mysql" else "")  # MariaDB would sort the groups
        )
        return {str(b): (int(c), int(s or 0)) for b, c, s in rows}

    def _latest(self, where: str) -> str:
        """The warehouse's latest versions (no tombstones) of the keys passing `where`, as `l`."""
        cols = [quote(c) for c in self.table.column_names]
        return (
            f"({latest_versions_sql(self.wh, self.table, cols, where)}) AS l "
            f"WHERE COALESCE(l.{quote(OP_COLUMN)}, 'r') <> {literal(OP_DELETE)}"
        )

    def warehouse_sums(self, digits: int, within: list[str], within_digits: int) -> Sums:
        name = self.wh.name
        where = self._in(key_bucket_sql(name, self.key_columns, within_digits), within) if within else ""
        rows = self.wh.execute(
            f"SELECT b, count(*), SUM({hash_int_sql(name, 'h')}) FROM (SELECT "
            f"{key_bucket_sql(name, self.key_columns, digits, 'l')} AS b, "
            f"{row_hash_sql(name, self.table.columns, 'l')} AS h FROM {self._latest(where)}) AS q GROUP BY b"
        )
        return {str(b): (int(c), int(s or 0)) for b, c, s in rows}

    def source_rows(self, prefixes: list[str], digits: int) -> dict[tuple, tuple[str, object]]:
        """Key -> (row hash, cursor) of the source rows in the buckets `prefixes`."""
        bucket = key_bucket_sql(self.engine.name, self.key_columns, digits)
        cursor = self.engine.quote(self.table.cursor)
        n = len(self.table.primary_key)
        return {
            _normal(tuple(r[:n])): (r[n], r[n + 1])
            for r in self.engine.execute(
                f"SELECT {self.src_keys}, {self.src_hash}, {cursor} FROM {self.src_table} "
                f"WHERE {self._in(bucket, prefixes)}"
            )
        }

    def warehouse_rows(self, prefixes: list[str], digits: int) -> dict[tuple, str]:
        """Key -> row hash of the warehouse's latest versions in the buckets `prefixes`."""
        where = self._in(key_bucket_sql(self.wh.name, self.key_columns, digits), prefixes)
        n = len(self.table.primary_key)
        rows = self.wh.execute(
            f"SELECT {self.wh_keys}, {row_hash_sql(self.wh.name, self.table.columns, 'l')} FROM {self._latest(where)}"
        )
        return {_normal(tuple(r[:n])): r[n] for r in rows}


def _both(
    pool: ThreadPoolExecutor, source: Callable[[], T], warehouse: Callable[[], U], diff: TableDiff
) -> tuple[T, U]:
    """Run the warehouse's call on the worker thread while the source's runs on this one (a
    SQLite source connection belongs to the thread that opened it); both results. Adds each
    side's time to `diff`."""

    def timed_warehouse() -> U:
        started = time.perf_counter()
        try:
            return warehouse()
        finally:
            diff.warehouse_seconds += time.perf_counter() - started

    future = pool.submit(timed_warehouse)
    started = time.perf_counter()
    try:
        src = source()
    except BaseException:
        wait([future])
        raise
    finally:
        diff.source_seconds += time.perf_counter() - started
    return src, future.result()


def _in_flight(cursor: object, upper: datetime | None) -> bool:
    if upper is None or cursor is None:
        return False
    if isinstance(cursor, str):
        cursor = datetime.fromisoformat(cursor)
    return isinstance(cursor, datetime) and cursor >= upper


def _normal(key: tuple) -> tuple:
    return tuple(v.rstrip() if isinstance(v, str) else v for v in key)


def verify_table(
    engine: SourceEngine,
    wh: Warehouse,
    table: Table,
    upper: datetime | None,
    fetch_rows: int = FETCH_ROWS,
    digits: int | None = None,
) -> TableDiff:
    """Compare one table; `upper` is the last extract's upper bound (rows whose source cursor is
    at or after it are in flight). `digits` forces the first level's bucket digits (default:
    from the source's row estimate, `bucket_digits`); a differing bucket of more than
    `fetch_rows` rows is split again. Returns the differences with every differing key."""
    started = time.perf_counter()
    diff = TableDiff(table.name, upper=upper)
    sides = _Sides(engine, wh, table)
    level = digits or bucket_digits(engine.estimate_rows(table))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-warehouse") as pool:
        src, dst = _both(
            pool, partial(sides.source_sums, level, [], 0), partial(sides.warehouse_sums, level, [], 0), diff
        )
        diff.source_rows = sum(c for c, _ in src.values())
        diff.warehouse_rows = sum(c for c, _ in dst.values())
        while True:
            diff.queries += 1
            diff.ranges += len(src.keys() | dst.keys())
            diff.source_bytes += 24 * len(src)
            differing = sorted(b for b in src.keys() | dst.keys() if src.get(b) != dst.get(b))
            large = [
                b
                for b in differing
                if max(src.get(b, (0, 0))[0], dst.get(b, (0, 0))[0]) > fetch_rows and level < HASH_DIGITS
            ]
            small = sorted(set(differing) - set(large))
            for i in range(0, len(small), FETCH_CHUNK):
                _compare(pool, sides, small[i : i + FETCH_CHUNK], level, upper, diff)
            if not large:
                break
            deeper = min(level + REFINE_DIGITS, HASH_DIGITS)
            src_call = partial(sides.source_sums, deeper, large, level)
            src, dst = _both(pool, src_call, partial(sides.warehouse_sums, deeper, large, level), diff)
            level = deeper
    for found in (diff.missing, diff.extra, diff.changed):
        found.sort(key=lambda k: tuple(str(v) for v in k))
    diff.seconds = time.perf_counter() - started
    return diff


def _compare(
    pool: ThreadPoolExecutor, sides: _Sides, prefixes: list[str], digits: int, upper: datetime | None, diff: TableDiff
) -> None:
    """Fetch the rows of the buckets `prefixes` from both sides and add their differences."""
    source, warehouse = _both(
        pool, partial(sides.source_rows, prefixes, digits), partial(sides.warehouse_rows, prefixes, digits), diff
    )
    diff.queries += 1
    diff.source_bytes += len(source) * sides.width
    for key, (digest, cursor) in source.items():
        if warehouse.get(key) == digest:
            continue
        if _in_flight(cursor, upper):
            diff.in_flight += 1
        elif key in warehouse:
            diff.changed.append(key)
        else:
            diff.missing.append(key)
    diff.extra.extend(k for k in warehouse if k not in source)


__all__ = ["TableDiff", "bucket_digits", "hash_int_sql", "verify_table"]
