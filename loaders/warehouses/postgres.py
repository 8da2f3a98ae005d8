"""PostgreSQL, the warehouse of small shops and the engine closest to Redshift that runs here.

It has no COPY from S3 and no external tables: the loader streams the parts (and the funnel
lake, file by file) through COPY FROM STDIN (arrow_copy.py).
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from .. import layout
from ..declarations import OP_COLUMN, OP_DELETE, Table
from .arrow_copy import copy_parquet
from .base import FUNNEL_TABLE, Warehouse, WarehouseError, part_columns
from .sql import literal, quote

FUNNEL_LOG = "_funnel_log"


class PostgresWarehouse(Warehouse):
    name = "postgres"
    parallel_loads = 3
    """Tables load on up to three connections at once: the server works on each table's COPY,
    insert and index maintenance in a backend process of its own, so a first load takes about
    its largest table's time, not the sum (bench/load.py at scale 1: 1.8 x with 3 connections,
    1.6 x with 2; hourly 1.5 x; more were not measured, BENCHMARKS.md)."""

    def connect(self) -> None:
        import psycopg2

        s = self.settings
        try:
            self.conn = psycopg2.connect(
                host=s.pg_host,
                port=s.pg_port,
                dbname=s.pg_database,
                user=s.pg_user,
                password=s.pg_password or None,
                connect_timeout=10,
            )
        except psycopg2.Error as exc:
            raise WarehouseError(
                f"cannot connect to PostgreSQL at {s.pg_host}:{s.pg_port}/{s.pg_database} as {s.pg_user!r}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            ) from None
        self.conn.autocommit = True
        if self.read_only:
            self.conn.set_session(readonly=True, autocommit=True)

    def cancel(self) -> None:
        """psycopg2's `cancel()`, safe from another thread: the running statement fails."""
        if self.conn is not None:
            self.conn.cancel()

    def create_statements(self, table: Table) -> list[str]:
        """Plus three indexes, PostgreSQL's stand-ins for Redshift's zone maps and sort key:
        - a BRIN index on the cursor: raw tables grow in cursor order, so the load's
          range-restricted existence check (loaders/load/statements.py) reads only the blocks of
          the batch's cursor range;
        - a B-tree on the declared key: a batch of random 32-hex ids spans the whole key range,
          so the key bounds alone prune nothing, and without it each hourly load read its whole
          raw table (bench/hourly, issue 18: load 3.50 x from scale 1 to 10; 1.90 x with it);
        - a partial B-tree on the key of the tombstones only (`WHERE _op = 'd'`): the delete
          hooks (macros/deletes.sql) look for the tombstones of the build window every build,
          and with it they read the deletes, not the table.
        `IF NOT EXISTS`: run before every load, they also index a raw table made before them."""
        raw = self.raw_name(table.name)
        keys = ", ".join(quote(k) for k in table.primary_key)
        return [
            *super().create_statements(table),
            f"CREATE INDEX IF NOT EXISTS {quote(table.name + '__cursor_brin')} ON {raw} "
            f"USING brin ({quote(table.cursor)})",
            f"CREATE INDEX IF NOT EXISTS {quote(table.name + '__key')} ON {raw} ({keys})",
            f"CREATE INDEX IF NOT EXISTS {quote(table.name + '__tombstone_key')} ON {raw} ({keys}) "
            f"WHERE {quote(OP_COLUMN)} = {literal(OP_DELETE)}",
        ]

    def fill_stage_statements(self, table: Table, manifest: dict, folder: str) -> list[str]:
        cols = ", ".join(quote(c) for c in part_columns(table, manifest))
        return [f"COPY {self.stage_name(table)} ({cols}) FROM STDIN WITH (FORMAT csv)"]

    def fill_stage(self, table: Table, manifest: dict, folder: str) -> None:
        cur = self.conn.cursor()
        try:
            copy_parquet(
                cur,
                self.store,
                [f"{folder}/{p['path']}" for p in manifest["parts"]],
                self.stage_name(table),
                self.settings.batch_rows,
            )
        finally:
            cur.close()

    def publish_funnel(self) -> str:
        """Copy each converted funnel file into raw.funnel_events, replacing that file's rows
        (idempotent), and log it in raw._funnel_log."""
        name = self.raw_name(FUNNEL_TABLE)
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
        self.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(self.funnel_column_defs())})")
        log_table = self.raw_name(FUNNEL_LOG)
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {log_table} (source_file VARCHAR(256) PRIMARY KEY, "
            "converted_at TIMESTAMP NOT NULL, rows_loaded BIGINT NOT NULL)"
        )
        loaded = dict(self.execute(f"SELECT source_file, converted_at FROM {log_table}"))
        copied = 0
        for marker_path in self.store.glob(layout.funnel_markers_glob()):
            marker = self.store.read_json(marker_path)
            source = marker["source"].rsplit("/", 1)[-1]
            if loaded.get(source) == datetime.fromisoformat(marker["converted_at"]):
                continue
            with self.transaction():
                self.execute(f"DELETE FROM {name} WHERE source_file = {literal(source)}")
                cur = self.conn.cursor()
                try:
                    rows = copy_parquet(
                        cur, self.store, marker["outputs"], name, self.settings.batch_rows, extend=_with_partition
                    )
                finally:
                    cur.close()
                self.execute(f"DELETE FROM {log_table} WHERE source_file = {literal(source)}")
                self.execute(
                    f"INSERT INTO {log_table} VALUES ({literal(source)}, "
                    f"{literal(marker['converted_at'].replace('T', ' '))}, {rows})"
                )
            copied += 1
        return f"{copied} converted funnel file(s) copied into raw.funnel_events"


def _with_partition(path: str, batch: pa.RecordBatch) -> pa.RecordBatch:
    """The lake file's partition values as columns (Hive partitioning keeps them in the path)."""
    partition = layout.parse_partition(path)
    assert partition is not None, path
    n = batch.num_rows
    batch = batch.append_column("year", pa.array([partition[0]] * n, pa.int32()))
    return batch.append_column("month", pa.array([partition[1]] * n, pa.int32()))
