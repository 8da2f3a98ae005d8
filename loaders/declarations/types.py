"""Logical column types and how each engine spells them.

The table declarations (models/staging/olist/_olist__sources.yml) use a small vocabulary of
logical types (so do the funnel events, models/staging/funnel/_funnel__sources.yml). This module
is the only Python place that maps them to SQLite, MySQL, Arrow/Parquet, Hive (Glue), DuckDB,
PostgreSQL and Redshift (macros/logical_types.sql spells the Redshift mapping for dbt's macros),
so the source schema, the extracted Parquet parts and the raw warehouse tables always agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

Kind = Literal["char", "varchar", "text", "integer", "bigint", "decimal", "double", "timestamp"]
Engine = Literal["sqlite", "mysql", "duckdb", "postgres", "redshift"]

_PATTERN = re.compile(
    r"^(?P<kind>char|varchar|text|integer|bigint|decimal|double|timestamp)"
    r"(?:\((?P<a>\d+)(?:,\s*(?P<b>\d+))?\))?$"
)


class TypeDeclarationError(ValueError):
    """A declared data_type is not one of the logical types."""


@dataclass(frozen=True)
class LogicalType:
    kind: Kind
    length: int | None = None  # char/varchar length, decimal precision, timestamp fraction digits
    scale: int | None = None  # decimal scale

    @classmethod
    def parse(cls, text: str) -> LogicalType:
        match = _PATTERN.match(text.strip().lower())
        if not match:
            raise TypeDeclarationError(
                f"unknown data_type {text!r}: use char(n), varchar(n), text, integer, bigint, "
                "decimal(p,s), double, timestamp or timestamp(6)"
            )
        a, b = match["a"], match["b"]
        kind = match["kind"]
        if kind == "decimal" and (a is None or b is None):
            raise TypeDeclarationError(f"decimal needs precision and scale: {text!r}")
        if kind in ("char", "varchar") and a is None:
            raise TypeDeclarationError(f"{kind} needs a length: {text!r}")
        return cls(kind, int(a) if a else None, int(b) if b else None)  # type: ignore[arg-type]  # the regex admits only Kind names

    @property
    def is_string(self) -> bool:
        return self.kind in ("char", "varchar", "text")

    def arrow(self) -> pa.DataType:
        if self.is_string:
            return pa.string()
        return {
            "integer": pa.int32(),
            "bigint": pa.int64(),
            "double": pa.float64(),
            "timestamp": pa.timestamp("us"),
        }.get(self.kind) or pa.decimal128(self.length, self.scale)

    def hive(self) -> str:
        """The Hive type the Glue Data Catalog declares (Spectrum and Athena read the lake with it)."""
        k, n, s = self.kind, self.length, self.scale
        return {
            "char": f"varchar({n})",
            "varchar": f"varchar({n})",
            "text": "string",
            "integer": "int",
            "bigint": "bigint",
            "double": "double",
            "timestamp": "timestamp",
            "decimal": f"decimal({n},{s})",
        }[k]

    def sql(self, engine: Engine) -> str:
        k, n, s = self.kind, self.length, self.scale
        if engine == "sqlite":
            return {
                "char": "TEXT",
                "varchar": "TEXT",
                "text": "TEXT",
                "integer": "INTEGER",
                "bigint": "INTEGER",
                "double": "REAL",
                "timestamp": "TIMESTAMP",
                # SQLite has no exact decimal type: money is kept as its exact text ("99.90")
                # and typed DECIMAL(p,s) by the extractor.
                "decimal": "TEXT",
            }[k]
        if engine == "mysql":
            return {
                "char": f"CHAR({n})",
                "varchar": f"VARCHAR({n})",
                "text": "TEXT",
                "integer": "INT",
                "bigint": "BIGINT",
                "double": "DOUBLE",
                "timestamp": f"DATETIME({n})" if n else "DATETIME",
                "decimal": f"DECIMAL({n},{s})",
            }[k]
        if engine == "redshift":
            # Redshift VARCHAR lengths count bytes: allow four per character of UTF-8.
            return {
                "char": f"VARCHAR({(n or 1) * 4})",
                "varchar": f"VARCHAR({(n or 1) * 4})",
                "text": "VARCHAR(65535)",
                "integer": "INTEGER",
                "bigint": "BIGINT",
                "double": "DOUBLE PRECISION",
                "timestamp": "TIMESTAMP",
                "decimal": f"DECIMAL({n},{s})",
            }[k]
        # duckdb and postgres
        return {
            "char": f"VARCHAR({n})" if engine == "postgres" else "VARCHAR",
            "varchar": f"VARCHAR({n})" if engine == "postgres" else "VARCHAR",
            "text": "TEXT" if engine == "postgres" else "VARCHAR",
            "integer": "INTEGER",
            "bigint": "BIGINT",
            "double": "DOUBLE PRECISION" if engine == "postgres" else "DOUBLE",
            "timestamp": "TIMESTAMP",
            "decimal": f"DECIMAL({n},{s})",
        }[k]
