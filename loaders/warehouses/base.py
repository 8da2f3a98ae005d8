"""What every warehouse offers the loader: a connection, the raw schema, and the statements
that differ between engines (how a batch's parts reach a stage table, table options, locking,
how the funnel lake becomes readable). The load flow itself (loaders/load/) is one piece of SQL
for every engine.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from .. import layout
from ..config import Settings, WarehouseName
from ..dbapi import fetch, transaction
from ..declarations import (
    BATCH_ID_COLUMN,
    CHANGE_COLUMNS,
    CHANGE_SEQ_COLUMN,
    LOADED_AT_COLUMN,
    OP_COLUMN,
    ROW_HASH_COLUMN,
    Table,
)
from ..store import ObjectStore
from .sql import literal, quote

log = logging.getLogger("loaders.warehouses")
LOAD_LOG = "_load_log"
FUNNEL_TABLE = "funnel_events"


def part_columns(table: Table, manifest: dict) -> list[str]:
    """The columns a batch's parts hold, in order: the declared ones, then the manifest's
    `change_columns`: `_op` and `_change_seq` (since issue 18; the load computes `_row_hash`),
    `_op`, `_row_hash` and `_change_seq` (contract 8 to issue 18), or none (before contract 8;
    the load fills all three). loaders/load/statements.py, `after_stage_statements`."""
    return [*table.column_names, *manifest.get("change_columns", [])]


class WarehouseError(RuntimeError):
    """The warehouse refused a statement or a connection; the message says which and why."""


class Warehouse:
    """Base: a DB-API connection, a raw schema and the engine's type names."""

    name: ClassVar[WarehouseName]
    hashes_while_staging: ClassVar[bool] = False
    """Whether `fill_stage_statements` computes `_row_hash` of a batch whose parts lack it (DuckDB,
    in the INSERT that reads the parts); otherwise the load UPDATEs the filled stage
    (loaders/load/statements.py, `after_stage_statements`)."""
    verifies_part_checksums: ClassVar[bool] = True
    """Whether the loader reads every part to check its SHA-256 before loading it. Redshift reads
    the parts from S3 itself (COPY), so the loader checks their sizes only."""
    parallel_loads: ClassVar[int] = 1
    """How many tables `dwh load` loads at once, each on a connection of its own (within
    DWH_MAX_MEMORY_MB, loaders/load/loader.py `load_tables`); 1: one after another on one
    connection. Set per engine from bench/load.py's measurements (BENCHMARKS.md)."""

    def __init__(self, settings: Settings, store: ObjectStore, read_only: bool = False):
        self.settings = settings
        self.store = store
        self.schema = settings.raw_schema
        self.read_only = read_only  # readers (dwh status, dwh dashboard): no write, no write lock
        self.conn: Any = None

    @staticmethod
    def hashes_missing(manifest: dict) -> bool:
        """Whether a batch's parts hold `_op` and `_change_seq` but not `_row_hash` (extracted
        since issue 18): the load computes it."""
        held = manifest.get("change_columns") or []
        return bool(held) and ROW_HASH_COLUMN not in held

    # -- statements -------------------------------------------------------------------------
    def raw_name(self, table: str) -> str:
        return f"{quote(self.schema)}.{quote(table)}"

    def column_defs(self, table: Table) -> list[str]:
        return [f"{quote(c.name)} {c.type.sql(self.name)}" for c in table.columns]

    def create_statements(self, table: Table) -> list[str]:
        """The raw schema, the raw table and the load log, if missing."""
        return [
            f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}",
            f"CREATE TABLE IF NOT EXISTS {self.raw_name(table.name)} (\n    "
            + ",\n    ".join(
                self.column_defs(table)
                + [f"{quote(BATCH_ID_COLUMN)} VARCHAR(64) NOT NULL", f"{quote(LOADED_AT_COLUMN)} TIMESTAMP NOT NULL"]
                + self.change_column_defs()
            )
            + "\n)"
            + self.table_options(table),
            f"CREATE TABLE IF NOT EXISTS {self.raw_name(LOAD_LOG)} (\n"
            "    batch_id VARCHAR(64) NOT NULL PRIMARY KEY,\n"
            "    table_name VARCHAR(128) NOT NULL,\n"
            "    mode VARCHAR(16) NOT NULL,\n"
            "    manifest_uri VARCHAR(1024) NOT NULL,\n"
            "    rows_in_batch BIGINT NOT NULL,\n"
            "    rows_inserted BIGINT NOT NULL,\n"
            "    cursor_lower TIMESTAMP,\n"
            "    cursor_upper TIMESTAMP NOT NULL,\n"
            "    loaded_at TIMESTAMP NOT NULL\n"
            ")",
        ]

    def change_column_defs(self) -> list[str]:
        """`_op`, `_row_hash`, `_change_seq` (contract 8). Nullable: a raw table made before
        them gets them by `migrate_statements`, which fills the old rows."""
        return [
            f"{quote(OP_COLUMN)} VARCHAR(1)",
            f"{quote(ROW_HASH_COLUMN)} VARCHAR(32)",
            f"{quote(CHANGE_SEQ_COLUMN)} BIGINT",
        ]

    def raw_columns(self, table: Table) -> list[str]:
        """The columns the raw table has now, in order (empty if it does not exist)."""
        return [
            r[0]
            for r in self.execute(
                f"SELECT column_name FROM information_schema.columns WHERE table_schema = {literal(self.schema)} "
                f"AND table_name = {literal(table.name)} ORDER BY ordinal_position"
            )
        ]

    def migrate_statements(self, table: Table) -> list[str]:
        """Statements that bring a raw table made before contract 8 up to date: add `_op`,
        `_row_hash` and `_change_seq`, and fill them for the rows already there ('r', the row
        hash computed here with the same expression as at extract, 0). Empty when up to date."""
        present = set(self.raw_columns(table))
        if not present or ROW_HASH_COLUMN in present:
            return []
        from ..verify.checksum import row_hash_sql

        name = self.raw_name(table.name)
        adds = [
            f"ALTER TABLE {name} ADD COLUMN {d}"
            for d, c in zip(self.change_column_defs(), CHANGE_COLUMNS, strict=True)
            if c not in present
        ]
        return [
            *adds,
            f"UPDATE {name} SET {quote(OP_COLUMN)} = 'r', "
            f"{quote(ROW_HASH_COLUMN)} = {row_hash_sql(self.name, table.columns)}, {quote(CHANGE_SEQ_COLUMN)} = 0",
        ]

    def table_options(self, table: Table) -> str:
        """Physical design appended to CREATE TABLE (Redshift: DISTKEY/SORTKEY)."""
        return ""

    def stage_name(self, table: Table) -> str:
        return quote(f"stage__{table.name}")

    def create_stage_statement(self, table: Table) -> str:
        """The stage table: the declared columns and `_op`, `_row_hash`, `_change_seq`."""
        return (
            f"CREATE TEMPORARY TABLE {self.stage_name(table)} (\n    "
            + ",\n    ".join(self.column_defs(table) + self.change_column_defs())
            + "\n)"
        )

    def fill_stage_statements(self, table: Table, manifest: dict, folder: str) -> list[str]:
        """The statements that copy a batch's parts into the stage table, as sent."""
        raise NotImplementedError

    def lock_statement(self) -> str | None:
        """A statement that serializes concurrent loaders inside the load transaction, if needed."""
        return None

    def build_preparations(self) -> list[list[str]]:
        """dbt invocations to run before `dbt build` (Redshift: the Spectrum schema)."""
        return []

    # -- execution --------------------------------------------------------------------------
    def connect(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def sibling(self) -> Warehouse:
        """Another warehouse of the same engine, settings and store, not yet connected (use it as
        a context manager): a connection of its own for one table of a parallel load."""
        return type(self)(self.settings, self.store, self.read_only)

    def cancel(self) -> None:
        """Cancel the statement running on this connection from another thread (a parallel
        load interrupted): its transaction rolls back. Engines without it do nothing."""

    def __enter__(self) -> Warehouse:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, sql: str) -> list[tuple]:
        return fetch(self.conn, sql, log=log)

    def transaction(self) -> AbstractContextManager[None]:
        return transaction(self.execute, self.rollback)

    def rollback(self) -> None:
        try:
            self.execute("ROLLBACK")
        except Exception:  # the connection may already have dropped the transaction
            log.debug("rollback failed", exc_info=True)

    def fill_stage(self, table: Table, manifest: dict, folder: str) -> None:
        for sql in self.fill_stage_statements(table, manifest, folder):
            self.execute(sql)

    def copy_error_detail(self) -> str:
        """Why the last COPY failed (file, line, column, reason), where the engine records it."""
        return ""

    def has_table(self, name: str) -> bool:
        return bool(
            self.execute(
                f"SELECT 1 FROM information_schema.tables WHERE table_schema = {literal(self.schema)} "
                f"AND table_name = {literal(name)}"
            )
        )

    # -- the funnel lake ---------------------------------------------------------------------
    def publish_funnel(self) -> str:
        """Make the funnel lake readable as the `funnel.funnel_events` source; say what was done."""
        raise NotImplementedError

    def funnel_column_defs(self) -> list[str]:
        """The funnel table's columns for this engine, partition columns included, rendered from
        the declaration (models/staging/funnel/_funnel__sources.yml)."""
        from ..declarations import funnel_declaration

        declaration = funnel_declaration(self.settings.project_dir)
        return [f"{quote(name)} {sql_type}" for name, sql_type in declaration.sql_columns(self.name)]

    def lake_partitions(self) -> list[tuple[int, int]]:
        found = {layout.parse_partition(p) for p in self.store.glob(layout.funnel_lake_glob())}
        return sorted(p for p in found if p is not None)
