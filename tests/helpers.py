"""Small helpers the tests share: run stages quietly, read the warehouse, compare staging with
the source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from loaders import pipeline
from loaders.config import PROJECT_DIR, Settings
from loaders.declarations import Column, Table, declared_tables
from loaders.report import Reporter
from loaders.sources import open_source
from loaders.sources.bootstrap import load_folder


def quiet() -> Reporter:
    return Reporter(echo=lambda line: None)


def fill_source(settings: Settings, csv_dir: Path, tables: list[str] | None = None) -> None:
    declared = declared_tables(settings.project_dir)
    chosen = [declared[t] for t in tables] if tables else list(declared.values())
    with open_source(settings.source_url, create=True) as db:
        load_folder(db, chosen, csv_dir)


def extract_and_load(settings: Settings, mode: pipeline.ExtractMode = "auto", tables: list[str] | None = None):
    batches = pipeline.extract(settings, quiet(), mode, tables)
    loads = pipeline.load(settings, quiet(), tables)
    return batches, loads


def warehouse_rows(settings: Settings, sql: str) -> list[tuple]:
    """The rows of `sql` on the settings' warehouse (DuckDB or PostgreSQL), read with the
    engine's own driver, not the loaders' code."""
    if settings.warehouse == "postgres":
        import psycopg2

        conn = psycopg2.connect(
            host=settings.pg_host, port=settings.pg_port, user=settings.pg_user, dbname=settings.pg_database
        )
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            conn.close()
    with duckdb.connect(settings.duckdb_path) as con:
        return con.execute(sql).fetchall()


def raw_snapshot(settings: Settings, tables: list[str]) -> dict[str, list[tuple]]:
    """Raw tables' rows without the batch columns, sorted: what 'same content' means."""
    out = {}
    declared = declared_tables(settings.project_dir)
    with duckdb.connect(settings.duckdb_path) as con:
        for name in tables:
            cols = ", ".join(f'"{c}"' for c in declared[name].column_names)
            out[name] = con.execute(f'SELECT {cols} FROM raw."{name}" ORDER BY ALL').fetchall()
    return out


STAGING_MODELS = PROJECT_DIR / "models" / "staging" / "olist"
_RENAMED = re.compile(r"renamed as \(\s*select\b(?P<body>.*?)\bfrom source\b", re.S | re.I)
_SELECT_ITEM = re.compile(r"(?:cast\((?P<cast_of>\w+) as (?P<cast>\w+)\)|(?P<column>\w+))(?: as (?P<alias>\w+))?", re.I)


@dataclass(frozen=True)
class StagedColumn:
    """A declared source column as its staging model shows it: renamed, and cast when `cast`."""

    declared: Column
    name: str
    cast: str | None


def staged_columns(table: Table) -> list[StagedColumn]:
    """The declared columns of `table` in the order declared, each with its name (and cast) in
    `stg_olist__<table>`, read from the model's `renamed` CTE: one `column`, `column as alias` or
    `cast(column as type) as alias` per line. AssertionError names the model when a line is not
    of that form or a declared column does not reach staging."""
    path = STAGING_MODELS / f"stg_olist__{table.name}.sql"
    match = _RENAMED.search(path.read_text(encoding="utf-8"))
    assert match, f"{path}: no `renamed as (select ... from source)` CTE"
    found: dict[str, tuple[str, str | None]] = {}
    for line in match["body"].splitlines():
        line = line.split("--", 1)[0].strip().rstrip(",")
        if not line:
            continue
        item = _SELECT_ITEM.fullmatch(line)
        assert item, f"{path}: cannot read the select item {line!r}"
        column = item["cast_of"] or item["column"]
        found[column] = (item["alias"] or column, item["cast"] and item["cast"].lower())
    missing = [c for c in table.column_names if c not in found]
    assert not missing, f"{path}: declared columns {missing} do not reach staging"
    return [StagedColumn(c, *found[c.name]) for c in table.columns]


def _source_value(value: object, column: StagedColumn) -> object:
    """A source value as the staging column must hold it: SQLite's text decimals and timestamps
    parsed, a timestamp cut to its date where staging casts it to a date. Nothing is rounded."""
    if value is None:
        return None
    kind = column.declared.type
    if kind.is_string:
        assert isinstance(value, str), (column.declared.name, value)
        return value
    if kind.kind in ("integer", "bigint"):
        assert isinstance(value, int), (column.declared.name, value)
        return value
    if kind.kind == "double":
        return float(value)  # type: ignore[arg-type]  # a double column: a float or a numeric string
    if kind.kind == "decimal":
        return Decimal(str(value))
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return stamp.date() if column.cast == "date" else stamp


def _staged_value(value: object, column: StagedColumn) -> object:
    """A staging value, checked to have the type its declaration gives (a decimal its scale)."""
    if value is None:
        return None
    kind = column.declared.type
    name = f"{column.name}={value!r}"
    if kind.is_string:
        assert isinstance(value, str), name
    elif kind.kind in ("integer", "bigint"):
        assert isinstance(value, int), name
    elif kind.kind == "double":
        assert isinstance(value, float), name
    elif kind.kind == "decimal":
        assert isinstance(value, Decimal) and value.as_tuple().exponent == -(kind.scale or 0), name
    elif column.cast == "date":
        assert isinstance(value, date) and not isinstance(value, datetime), name
    else:
        assert isinstance(value, datetime) and value.tzinfo is None, name
    return value


def staging_differences(settings: Settings, table: Table) -> list[str]:
    """Every difference between the source table and its staging model over all declared
    columns, compared here row by row (not with `dwh verify`): keys missing from staging, keys
    staging has twice or that the source no longer has, and changed values, one line each."""
    columns = staged_columns(table)
    key = [i for i, c in enumerate(columns) if c.declared.name in table.primary_key]
    with open_source(settings.source_url) as db:
        read = ", ".join(db.quote(c.declared.name) for c in columns)
        source_rows = [
            tuple(_source_value(v, c) for v, c in zip(row, columns, strict=True))
            for row in db.execute(f"SELECT {read} FROM {db.quote(table.name)}")
        ]
    names = ", ".join(f'"{c.name}"' for c in columns)
    staged = warehouse_rows(settings, f'SELECT {names} FROM staging."stg_olist__{table.name}"')
    staged_rows = [tuple(_staged_value(v, c) for v, c in zip(row, columns, strict=True)) for row in staged]
    source = {tuple(r[i] for i in key): r for r in source_rows}
    assert len(source) == len(source_rows), f"source {table.name}: duplicate primary keys"
    out = []
    seen: dict[tuple, tuple] = {}
    for row in staged_rows:
        k = tuple(row[i] for i in key)
        if k in seen:
            out.append(f"{table.name} {k}: twice in staging")
        seen[k] = row
    for k, row in sorted(source.items(), key=lambda kv: repr(kv[0])):
        if k not in seen:
            out.append(f"{table.name} {k}: missing from staging")
            continue
        for c, want, got in zip(columns, row, seen[k], strict=True):
            if want != got:
                out.append(f"{table.name} {k}: {c.name} is {got!r} in staging, {want!r} in the source")
    out += [f"{table.name} {k}: in staging, deleted in the source" for k in seen if k not in source]
    return out
