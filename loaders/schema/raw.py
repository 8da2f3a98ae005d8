"""The raw tables follow the batches: columns added, types widened, on every warehouse.

Before a batch loads (and for the declared columns, whenever `dwh load` starts), each column the
batch or the declaration has is compared with the raw table's (information_schema.columns):

* not in raw: `ALTER TABLE ... ADD COLUMN` (nullable; earlier rows read NULL);
* narrower in raw (diff.compare says the wanted type widens it): widened. DuckDB and PostgreSQL
  `ALTER COLUMN ... TYPE`; Redshift allows that only for a VARCHAR's length (and not inside a
  transaction), so for any other widening it adds a column of the new type, copies, drops the
  old one and renames the new one, in one transaction. A Redshift DISTKEY or SORTKEY column
  cannot be dropped: that widening stops the load with a line asking for a rebuild;
* as wide or wider in raw: nothing (the batch's values are cast on insert);
* another kind of type in raw: the load stops with one line naming table, column and types.

Each step is atomic on its own and done before the batch's load transaction: a load that
fails afterwards leaves a complete (wider) raw table and nothing of the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from ..declarations import Column, LogicalType, Table
from ..runs import first_line
from ..warehouses import Warehouse, literal, quote
from .diff import compare, type_name

log = logging.getLogger("loaders.schema")
WIDEN_SUFFIX = "__widened"


class RawSchemaError(RuntimeError):
    """A raw column cannot take a batch's column; the message names table, column and types."""


@dataclass(frozen=True)
class RawColumn:
    """A raw table's column: its warehouse type as spelled there, and that type as a logical one."""

    name: str
    sql: str
    logical: LogicalType | None


@dataclass(frozen=True)
class RawStep:
    """Statements that change one raw column; `transaction`: run them in one transaction."""

    description: str
    statements: tuple[str, ...]
    transaction: bool = False


def warehouse_logical(engine: str, data_type: str, length: int | None, precision: int | None, scale: int | None):
    """A raw column's type (information_schema.columns) as a logical type and as spelled in SQL.

    Redshift VARCHAR lengths count bytes (types.py allows four per character): the logical
    length is a quarter of it. DuckDB's VARCHAR has no length: logical `text`."""
    t = data_type.strip().lower()
    if t.startswith("decimal") or t == "numeric":
        if precision is None:  # DuckDB spells it DECIMAL(p,s) in data_type
            digits = t[t.index("(") + 1 : t.index(")")].split(",") if "(" in t else ["18", "3"]
            precision, scale = int(digits[0]), int(digits[1])
        return LogicalType("decimal", precision, scale or 0), f"DECIMAL({precision},{scale or 0})"
    if t in ("varchar", "character varying", "char", "character", "bpchar", "text", "string"):
        if not length or t == "text" and engine != "redshift":
            return LogicalType("text"), "TEXT" if t == "text" else "VARCHAR"
        chars = length // 4 if engine == "redshift" else length
        return LogicalType("varchar", max(chars, 1)), f"VARCHAR({length})"
    if t in ("integer", "int", "int4", "smallint", "int2", "tinyint"):
        return LogicalType("integer"), "INTEGER"
    if t in ("bigint", "int8"):
        return LogicalType("bigint"), "BIGINT"
    if t.startswith("double") or t in ("float8", "float", "real"):
        return LogicalType("double"), data_type.upper()
    if t.startswith("timestamp"):
        return LogicalType("timestamp"), "TIMESTAMP"
    return None, data_type.upper()


def raw_columns(wh: Warehouse, table: str) -> dict[str, RawColumn]:
    """The raw table's columns by name (empty when it does not exist)."""
    rows = wh.execute(
        "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
        f"FROM information_schema.columns WHERE table_schema = {literal(wh.schema)} AND table_name = {literal(table)} "
        "ORDER BY ordinal_position"
    )
    out = {}
    for name, data_type, length, precision, scale in rows:
        logical, sql = warehouse_logical(
            wh.name,
            str(data_type),
            int(length) if length is not None else None,
            int(precision) if precision is not None else None,
            int(scale) if scale is not None else None,
        )
        out[str(name)] = RawColumn(str(name), sql, logical)
    return out


def widen_step(wh: Warehouse, table: Table, column: str, current: RawColumn, wanted: LogicalType) -> RawStep:
    """The statements that widen one raw column to `wanted` on this warehouse."""
    raw = wh.raw_name(table.name)
    target = wanted.sql(wh.name)
    what = f"raw.{table.name}.{column} widened from {current.sql} to {target}"
    if wh.name == "duckdb":
        return RawStep(what, (f"ALTER TABLE {raw} ALTER COLUMN {quote(column)} SET DATA TYPE {target}",))
    if wh.name == "postgres":
        return RawStep(what, (f"ALTER TABLE {raw} ALTER COLUMN {quote(column)} TYPE {target}",), True)
    if wanted.is_string and current.logical is not None and current.logical.is_string:
        # the one type change Redshift does in place; it may not run inside a transaction block
        return RawStep(what, (f"ALTER TABLE {raw} ALTER COLUMN {quote(column)} TYPE {target}",))
    if column in (table.merge_key, table.cursor):
        raise RawSchemaError(
            f"table {table.name!r}, column {column!r}: Redshift cannot widen its {current.sql} DISTKEY/SORTKEY "
            f"column to {target} in place; rebuild raw.{table.name} (CREATE TABLE ... AS SELECT with the new type, "
            "then swap the names) and load again"
        )
    temp = quote(column + WIDEN_SUFFIX)
    return RawStep(
        what,
        (
            f"LOCK {raw}",
            f"ALTER TABLE {raw} ADD COLUMN {temp} {target}",
            f"UPDATE {raw} SET {temp} = {quote(column)}",
            f"ALTER TABLE {raw} DROP COLUMN {quote(column)}",
            f"ALTER TABLE {raw} RENAME COLUMN {temp} TO {quote(column)}",
        ),
        True,
    )


def evolve_steps(
    wh: Warehouse, table: Table, columns: Iterable[Column], existing: dict[str, RawColumn]
) -> list[RawStep]:
    """The steps that let raw.<table> take `columns`: adds and widenings, in column order.

    Raises RawSchemaError for a column whose raw type is of another kind (or narrower in a way
    no widening fixes)."""
    steps = []
    for col in columns:
        current = existing.get(col.name)
        if current is None:
            steps.append(
                RawStep(
                    f"raw.{table.name}.{col.name} added ({col.type.sql(wh.name)}, NULL in the rows loaded before)",
                    (f"ALTER TABLE {wh.raw_name(table.name)} ADD COLUMN {quote(col.name)} {col.type.sql(wh.name)}",),
                )
            )
            continue
        if current.logical is None:
            verdict = "changed"
        else:
            verdict = compare(current.logical, col.type)
        if verdict in ("same", "narrowed"):
            continue  # raw holds every value already (the insert casts)
        if verdict == "changed":
            raise RawSchemaError(
                f"table {table.name!r}, column {col.name!r}: the batch has {type_name(col.type)} but raw.{table.name} "
                f"has {current.sql}, another kind of type; declare the column under a new name or rebuild "
                f"raw.{table.name}; nothing was loaded"
            )
        if col.type.sql(wh.name) == current.sql:
            continue  # the warehouse spells both the same (DuckDB's VARCHAR)
        steps.append(widen_step(wh, table, col.name, current, col.type))
    return steps


def run_steps(wh: Warehouse, steps: list[RawStep]) -> list[str]:
    """Run the steps (each transactional one in its own transaction); return their descriptions.
    Raises RawSchemaError (one line naming the step) when the warehouse refuses one; the steps
    before it stay done, each complete."""
    for step in steps:
        log.info("raw schema: %s", step.description)
        try:
            if step.transaction:
                with wh.transaction():
                    for sql in step.statements:
                        wh.execute(sql)
            else:
                for sql in step.statements:
                    wh.execute(sql)
        except Exception as exc:
            raise RawSchemaError(f"{step.description} failed: {first_line(exc)}; nothing was loaded") from None
    return [s.description for s in steps]


def evolve_raw(wh: Warehouse, table: Table, columns: Iterable[Column]) -> list[str]:
    """Add and widen raw.<table>'s columns so that it takes `columns`; what was done, one line each.
    The raw table is created first (loaders/load/loader.py); one the catalog does not show is
    left alone (the load's own statements then name it)."""
    columns = list(columns)
    existing = raw_columns(wh, table.name)
    if not existing:
        return []
    try:
        return run_steps(wh, evolve_steps(wh, table, columns, existing))
    except RawSchemaError:
        # another loader may have made the same change meanwhile: done if nothing is left to do
        if evolve_steps(wh, table, columns, raw_columns(wh, table.name)):
            raise
        return []
