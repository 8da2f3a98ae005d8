"""Quoting for the warehouse SQL the loader writes itself (identifiers come from declarations)."""

from __future__ import annotations

from datetime import datetime


def quote(name: str) -> str:
    """A double-quoted identifier (DuckDB, PostgreSQL and Redshift alike)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal for the few values the loader writes itself (ids, counts, timestamps)."""
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def timestamp(value: datetime) -> str:
    """A TIMESTAMP literal to the microsecond, for every warehouse."""
    return f"CAST({literal(value.strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMP)"
