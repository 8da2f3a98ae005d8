"""The funnel events, read from the one declaration that dbt reads too.

See models/staging/funnel/_funnel__sources.yml (docs/architecture.md, contracts 1 and 6). The
converter's header, checks and Parquet schema (loaders/funnel/), the Glue table, the warehouse's
raw.funnel_events table (loaders/warehouses/base.py) and the Spectrum DDL (macros/spectrum.sql)
all render from `funnel_declaration()`; nothing else names a funnel column.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, get_args

import pyarrow as pa
import yaml

from .olist import DeclarationError
from .types import Engine, LogicalType, TypeDeclarationError

DECLARATIONS = Path("models/staging/funnel/_funnel__sources.yml")
SOURCE_NAME = "funnel"
TABLE_NAME = "funnel_events"

Origin = Literal["file", "converter", "partition"]
"""Where a column's value comes from: the vendor's CSV, the converter, or the lake's Hive path."""
ORIGINS: tuple[Origin, ...] = get_args(Origin)


@dataclass(frozen=True)
class FunnelColumn:
    """One declared column. `length`: the most characters a string value may have (None: any)."""

    name: str
    type: LogicalType
    origin: Origin
    required: bool = False  # an empty value is a reject, reason `empty_<name>`
    empty_as_null: bool = False
    accepted_values: tuple[str, ...] = ()
    format: str | None = None  # a timestamp's strptime pattern
    reject_reason: str | None = None  # the reason for a value outside accepted_values or format
    dictionary: bool = False  # Parquet: dictionary-encoded
    compressed: bool = True  # Parquet: with DWH_PARQUET_COMPRESSION (else plain)
    statistics: bool = False  # Parquet: min/max written

    @property
    def length(self) -> int | None:
        return self.type.length if self.type.kind in ("char", "varchar") else None

    @property
    def too_long_reason(self) -> str:
        """The reject reason of a value longer than the declared length."""
        return f"too_long_{self.name}"


@dataclass(frozen=True)
class FunnelDeclaration:
    """The funnel events table as declared: its columns in order, and its file's meta."""

    table: str
    columns: tuple[FunnelColumn, ...]
    meta: tuple[tuple[str, str], ...] = ()

    @property
    def file_columns(self) -> tuple[FunnelColumn, ...]:
        """The CSV's columns, in header order."""
        return tuple(c for c in self.columns if c.origin == "file")

    @property
    def header(self) -> tuple[str, ...]:
        """The header line the vendor's files must start with, as names."""
        return tuple(c.name for c in self.file_columns)

    @property
    def lake_columns(self) -> tuple[FunnelColumn, ...]:
        """What each Parquet file of the lake holds: the file's columns, then the converter's."""
        return tuple(c for c in self.columns if c.origin != "partition")

    @property
    def partition_columns(self) -> tuple[FunnelColumn, ...]:
        return tuple(c for c in self.columns if c.origin == "partition")

    @property
    def event_time(self) -> FunnelColumn:
        """The file's timestamp whose year and month partition the lake (the first one declared)."""
        return next(c for c in self.file_columns if c.type.kind == "timestamp")

    def column(self, name: str) -> FunnelColumn:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def arrow_schema(self) -> pa.Schema:
        """The Parquet files' schema (partition columns excluded: they are in the path)."""
        return pa.schema([pa.field(c.name, c.type.arrow()) for c in self.lake_columns])

    def sql_columns(self, engine: Engine) -> list[tuple[str, str]]:
        """(name, SQL type) of every column for a warehouse table, partition columns last."""
        return [(c.name, c.type.sql(engine)) for c in (*self.lake_columns, *self.partition_columns)]

    def glue_columns(self) -> list[tuple[str, str]]:
        """(name, Hive type) of the Parquet columns, as the Glue Data Catalog table declares them."""
        return [(c.name, c.type.hive()) for c in self.lake_columns]


def _column(entry: dict, where: str) -> FunnelColumn:
    name = entry.get("name")
    meta = entry.get("meta") or {}
    try:
        logical = LogicalType.parse(str(entry["data_type"]))
    except (KeyError, TypeDeclarationError) as exc:
        raise DeclarationError(f"{where}: column {name!r} needs a valid data_type ({exc})") from exc
    origin = meta.get("origin")
    parquet = meta.get("parquet") or {}
    if origin not in ORIGINS:
        raise DeclarationError(f"{where}: column {name!r}: meta.origin must be one of {', '.join(ORIGINS)}")
    column = FunnelColumn(
        name=str(name),
        type=logical,
        origin=origin,
        required=bool(meta.get("required", False)),
        empty_as_null=bool(meta.get("empty_as_null", False)),
        accepted_values=tuple(str(v) for v in meta.get("accepted_values") or ()),
        format=meta.get("format"),
        reject_reason=meta.get("reject_reason"),
        dictionary=bool(parquet.get("dictionary", False)),
        compressed=bool(parquet.get("compressed", True)),
        statistics=bool(parquet.get("statistics", False)),
    )
    if (column.accepted_values or column.format) and not column.reject_reason:
        raise DeclarationError(f"{where}: column {name!r} has a check but no meta.reject_reason")
    if column.format and logical.kind != "timestamp":
        raise DeclarationError(f"{where}: column {name!r}: meta.format is for timestamp columns")
    if origin == "file" and not (logical.is_string or logical.kind == "timestamp"):
        raise DeclarationError(f"{where}: file column {name!r} must be a string or a timestamp")
    return column


@cache
def funnel_declaration(project_dir: Path) -> FunnelDeclaration:
    """The declared funnel events table of the project (read once per process).

    Raises DeclarationError naming the file and column when the YAML is missing or inconsistent.
    """
    path = Path(project_dir) / DECLARATIONS
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DeclarationError(f"funnel declaration not found: {path}") from exc
    sources = [s for s in doc.get("sources", []) if s.get("name") == SOURCE_NAME]
    tables = [t for t in (sources[0].get("tables", []) if sources else []) if t.get("name") == TABLE_NAME]
    if not tables:
        raise DeclarationError(f"{path}: no table {SOURCE_NAME}.{TABLE_NAME}")
    where = f"{path}: table {TABLE_NAME!r}"
    declaration = FunnelDeclaration(
        table=TABLE_NAME,
        columns=tuple(_column(c, where) for c in tables[0].get("columns", [])),
        meta=tuple((str(k), str(v)) for k, v in (tables[0].get("meta") or {}).items()),
    )
    if not declaration.file_columns:
        raise DeclarationError(f"{where}: no column with meta.origin 'file'")
    for name in ("source_file", "converted_at"):
        if name not in {c.name for c in declaration.columns if c.origin == "converter"}:
            raise DeclarationError(f"{where}: the converter column {name!r} is not declared")
    if not any(c.type.kind == "timestamp" for c in declaration.file_columns):
        raise DeclarationError(f"{where}: no timestamp file column to partition the lake by")
    if [c.name for c in declaration.partition_columns] != ["year", "month"]:
        raise DeclarationError(f"{where}: the partition columns must be year, month (the lake's layout)")
    return declaration
