"""The one-time bootstrap of a source database: the Olist schema and its bulk load."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ...declarations import Table
from ..base import SourceEngine, SourceEngineName


@dataclass(frozen=True)
class BulkLoadReport:
    """One CSV file bulk-loaded into its source table."""

    table: str
    file: str
    rows_read: int
    rows_stored: int
    seconds: float


class Bootstrap:
    """Creates the declared tables (key, cursor column kept by the database, cursor index) and
    bulk-loads a CSV file into each. Subclasses spell it for one engine."""

    engine_name: ClassVar[SourceEngineName]

    def __init__(self, engine: SourceEngine):
        self.engine = engine
        self.q = engine.quote

    # -- DDL --------------------------------------------------------------------------------
    def surrogate_column(self, name: str) -> str:
        raise NotImplementedError

    def cursor_column(self, name: str) -> str:
        raise NotImplementedError

    def table_suffix(self) -> str:
        return ""

    def primary_key_clause(self, table: Table) -> str | None:
        return f"PRIMARY KEY ({', '.join(self.q(k) for k in table.primary_key)})"

    def after_create(self, table: Table) -> None:
        """Indexes and triggers, once the table exists."""

    def create_table(self, table: Table) -> None:
        """Create the table (if missing) with its key, cursor default, trigger and index."""
        cols = []
        for c in table.columns:
            if c.name == table.surrogate:
                cols.append(self.surrogate_column(c.name))
            elif c.name == table.cursor:
                cols.append(self.cursor_column(c.name))
            else:
                null = " NOT NULL" if c.name in table.primary_key else ""
                cols.append(f"{self.q(c.name)} {c.type.sql(self.engine_name)}{null}")
        key = self.primary_key_clause(table)
        if key:
            cols.append(key)
        self.engine.execute(
            f"CREATE TABLE IF NOT EXISTS {self.q(table.name)} (\n  " + ",\n  ".join(cols) + f"\n){self.table_suffix()}"
        )
        self.after_create(table)

    def drop_table(self, table: Table) -> None:
        self.engine.execute(f"DROP TABLE IF EXISTS {self.q(table.name)}")

    # -- bulk load --------------------------------------------------------------------------
    def load_all(
        self, tables: list[Table], folder: Path, replace: bool, progress: Callable[[BulkLoadReport], None] | None
    ) -> list[BulkLoadReport]:
        """Create and fill every table from its CSV file in `folder`, all or nothing: when any
        file is refused (loaders/sources/bootstrap/values.py) or any load fails, the source is
        left as it was. With `replace` the tables are recreated; otherwise they must be empty
        (checked by `load_folder` before anything is written)."""
        raise NotImplementedError

    def report(self, table: Table, csv_path: Path, read: int, stored: int, started: float) -> BulkLoadReport:
        return BulkLoadReport(table.name, csv_path.name, read, stored, time.perf_counter() - started)
