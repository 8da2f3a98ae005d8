"""Small helpers the tests share: run stages quietly, read the warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb

from loaders import pipeline
from loaders.config import Settings
from loaders.declarations import declared_tables
from loaders.report import Reporter
from loaders.sources import open_source
from loaders.sources.bootstrap import load_folder


def quiet() -> Reporter:
    return Reporter(echo=lambda line: None)


def fill_source(settings: Settings, csv_dir: Path, tables: list[str] | None = None) -> None:
    declared = declared_tables(settings.project_dir)
    chosen = [declared[t] for t in tables] if tables else list(declared.values())
    with open_source(settings.source_url) as db:
        load_folder(db, chosen, csv_dir)


def extract_and_load(settings: Settings, mode: pipeline.ExtractMode = "auto", tables: list[str] | None = None):
    batches = pipeline.extract(settings, quiet(), mode, tables)
    loads = pipeline.load(settings, quiet(), tables)
    return batches, loads


def warehouse_rows(settings: Settings, sql: str) -> list[tuple]:
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
