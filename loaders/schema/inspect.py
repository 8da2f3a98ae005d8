"""What the source table really has: its columns and their types, read from the catalog.

SQLite: `PRAGMA table_info` (the declared type text of each column); MySQL/MariaDB:
`information_schema.columns`. Each type is read back as a logical type of the declarations
(loaders/declarations/types.py) where one fits, so the comparison with the declaration
(diff.py) is between like and like. A type with no logical counterpart (DATE, JSON, BLOB,
ENUM ...) keeps only its source spelling (`logical` None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..declarations import LogicalType, Table
from ..sources import SourceEngine, SourceError

_DIGITS = re.compile(r"\((\d+)(?:\s*,\s*(\d+))?\)")


@dataclass(frozen=True)
class SourceColumn:
    """One column of the source table: its name, its type as the source spells it, and that
    type as a logical type (None when no logical type holds its values)."""

    name: str
    source_type: str
    logical: LogicalType | None


def _numbers(text: str) -> tuple[int | None, int | None]:
    match = _DIGITS.search(text)
    if not match:
        return None, None
    return int(match[1]), int(match[2]) if match[2] is not None else None


def sqlite_logical(declared: str) -> LogicalType | None:
    """A SQLite column's declared type (`VARCHAR(64)`, `DECIMAL(12,2)`, `TEXT`, `INTEGER` ...)
    as a logical type. SQLite's own spellings of the logical types (types.py: TEXT for every
    string and for decimals kept as exact text, INTEGER, REAL, TIMESTAMP) map to the widest
    logical type they stand for; diff.py first checks whether the text is simply the engine's
    spelling of the declared type."""
    text = declared.strip().upper()
    base = text.split("(", 1)[0].strip()
    n, s = _numbers(text)
    if base in ("CHAR", "CHARACTER", "NCHAR") and n:
        return LogicalType("char", n)
    if base in ("VARCHAR", "CHARACTER VARYING", "NVARCHAR", "VARYING CHARACTER") and n:
        return LogicalType("varchar", n)
    if base in ("TEXT", "CLOB", "VARCHAR", "CHAR", "STRING"):
        return LogicalType("text")
    if base in ("INT", "MEDIUMINT", "SMALLINT", "TINYINT", "INT2", "INT4"):
        return LogicalType("integer")
    if base == "INTEGER":
        return LogicalType("integer")  # also the bootstrap's spelling of bigint (diff.py checks that first)
    if base in ("BIGINT", "INT8", "UNSIGNED BIG INT"):
        return LogicalType("bigint")
    if base in ("DECIMAL", "NUMERIC") and n is not None:
        return LogicalType("decimal", n, s or 0)
    if base in ("REAL", "DOUBLE", "DOUBLE PRECISION", "FLOAT"):
        return LogicalType("double")
    if base in ("TIMESTAMP", "DATETIME"):
        return LogicalType("timestamp", n)
    return None


def mysql_logical(
    data_type: str, column_type: str, char_length: int | None, precision: int | None, scale: int | None
) -> LogicalType | None:
    """A MySQL/MariaDB column (information_schema.columns) as a logical type."""
    kind = data_type.lower()
    if kind == "char":
        return LogicalType("char", int(char_length or 1))
    if kind == "varchar":
        return LogicalType("varchar", int(char_length or 1))
    if kind in ("text", "tinytext", "mediumtext", "longtext"):
        return LogicalType("text")
    if kind in ("tinyint", "smallint", "mediumint", "int", "integer"):
        if "unsigned" in column_type.lower() and kind in ("int", "integer"):
            return LogicalType("bigint")  # an unsigned INT needs 64 bits
        return LogicalType("integer")
    if kind == "bigint":
        return None if "unsigned" in column_type.lower() else LogicalType("bigint")
    if kind in ("decimal", "numeric"):
        return LogicalType("decimal", int(precision or 10), int(scale or 0))
    if kind in ("double", "float", "real"):
        return LogicalType("double")
    if kind in ("datetime", "timestamp"):
        n, _ = _numbers(column_type)
        return LogicalType("timestamp", n or None)
    return None


def source_columns(engine: SourceEngine, table: Table) -> list[SourceColumn]:
    """The source table's columns in their order. Raises SourceError naming the table when the
    source has no such table."""
    if engine.name == "sqlite":
        rows = engine.execute(f"PRAGMA table_info({engine.quote(table.name)})")
        columns = [SourceColumn(str(r[1]), str(r[2] or ""), sqlite_logical(str(r[2] or ""))) for r in rows]
    else:
        rows = engine.execute(
            "SELECT column_name, data_type, column_type, character_maximum_length, numeric_precision, "
            "numeric_scale FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = %s "
            "ORDER BY ordinal_position",
            (table.name,),
        )
        columns = [
            SourceColumn(
                str(r[0]),
                str(r[2]),
                mysql_logical(str(r[1]), str(r[2]), _int(r[3]), _int(r[4]), _int(r[5])),
            )
            for r in rows
        ]
    if not columns:
        raise SourceError(f"table {table.name!r} is not in the source database ({engine.name})")
    return columns


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))
