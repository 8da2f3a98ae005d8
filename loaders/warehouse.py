"""Warehouse connections and the few statements that differ between engines.

The load flow (loaders/load.py) is one piece of SQL for every engine; what differs is how a
batch's Parquet parts reach a temporary stage table:
  duckdb    INSERT INTO stage SELECT ... FROM read_parquet([...])   (local or s3:// via fsspec)
  redshift  COPY stage FROM '<batch>/_copy.manifest' IAM_ROLE ... FORMAT AS PARQUET MANIFEST
  postgres  COPY stage FROM STDIN, fed from the parts by pyarrow
Identifiers come from the table declarations and are always quoted here.
"""

from __future__ import annotations

import io
import logging
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .config import Settings
from .dbapi import fetch, transaction
from .store import ObjectStore
from .tables import BATCH_ID_COLUMN, LOADED_AT_COLUMN, Table

log = logging.getLogger(__name__)
LOAD_LOG = "_load_log"


class WarehouseError(RuntimeError):
    """The warehouse refused a statement; the message says which batch and why."""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal for the few values the loader writes itself (ids, counts, timestamps)."""
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


class Warehouse:
    """Base: a DB-API connection, a raw schema and the engine's type names."""

    engine = "default"

    def __init__(self, settings: Settings, store: ObjectStore):
        self.settings = settings
        self.store = store
        self.schema = settings.raw_schema
        self.conn: Any = None

    # -- statements -------------------------------------------------------------------------
    def raw_name(self, table: str) -> str:
        return f"{quote(self.schema)}.{quote(table)}"

    def column_defs(self, table: Table) -> list[str]:
        return [f"{quote(c.name)} {c.type.sql(self.engine)}" for c in table.columns]  # type: ignore[arg-type]

    def create_statements(self, table: Table) -> list[str]:
        ts = "TIMESTAMP"
        return [
            f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}",
            f"CREATE TABLE IF NOT EXISTS {self.raw_name(table.name)} (\n    "
            + ",\n    ".join(
                self.column_defs(table)
                + [f"{quote(BATCH_ID_COLUMN)} VARCHAR(64) NOT NULL", f"{quote(LOADED_AT_COLUMN)} {ts} NOT NULL"]
            )
            + "\n)" + self.table_options(table),
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

    def table_options(self, table: Table) -> str:
        return ""

    def stage_name(self, table: Table) -> str:
        return quote(f"stage__{table.name}")

    def create_stage_statement(self, table: Table) -> str:
        return f"CREATE TEMPORARY TABLE {self.stage_name(table)} (\n    " + ",\n    ".join(self.column_defs(table)) + "\n)"

    def fill_stage_statements(self, table: Table, manifest: dict, folder: str) -> list[str]:
        raise NotImplementedError

    def lock_statement(self) -> str | None:
        return None

    # -- execution --------------------------------------------------------------------------
    def connect(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self) -> "Warehouse":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, sql: str) -> list[tuple]:
        return fetch(self.conn, sql, log=log)

    def transaction(self):
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
        return ""


class DuckDBWarehouse(Warehouse):
    engine = "duckdb"

    def connect(self) -> None:
        import duckdb
        from pathlib import Path

        try:
            Path(self.settings.duckdb_path).parent.mkdir(parents=True, exist_ok=True)
            self.conn = duckdb.connect(self.settings.duckdb_path)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open DuckDB file {self.settings.duckdb_path}: {exc}") from None
        if self.store.is_s3:  # DuckDB reads s3:// through the same fsspec filesystem
            self.conn.register_filesystem(self.store.fs)

    def execute(self, sql: str) -> list[tuple]:
        log.debug("warehouse SQL: %s", sql)
        return self.conn.execute(sql).fetchall()

    def fill_stage_statements(self, table: Table, manifest: dict, folder: str) -> list[str]:
        files = ", ".join(literal(self.store.uri(f"{folder}/{p['path']}")) for p in manifest["parts"])
        cols = ", ".join(quote(c) for c in table.column_names)
        return [f"INSERT INTO {self.stage_name(table)} ({cols}) SELECT {cols} FROM read_parquet([{files}])"]


class RedshiftWarehouse(Warehouse):
    """Redshift: COPY from the batch's manifest with the cluster's IAM role."""

    engine = "redshift"

    def table_options(self, table: Table) -> str:
        # Raw tables are read by merge key and by cursor (staging dedup, incremental facts).
        return f"\nDISTKEY ({quote(table.merge_key)})\nSORTKEY ({quote(table.cursor)})"

    def lock_statement(self) -> str | None:
        # Serializes concurrent loaders: Redshift does not enforce the log's primary key.
        return f"LOCK {self.raw_name(LOAD_LOG)}"

    def fill_stage_statements(self, table: Table, manifest: dict, folder: str) -> list[str]:
        if not self.settings.redshift_iam_role:
            from .config import ConfigError

            raise ConfigError("DWH_REDSHIFT_IAM_ROLE is not set: COPY needs the ARN of a role Redshift can assume")
        from .extract import COPY_MANIFEST

        manifest_uri = self.store.uri(f"{folder}/{COPY_MANIFEST}")
        return [
            f"COPY {self.stage_name(table)}\n"
            f"FROM {literal(manifest_uri)}\n"
            f"IAM_ROLE {literal(self.settings.redshift_iam_role)}\n"
            "FORMAT AS PARQUET\n"
            "MANIFEST\n"
            "ACCEPTINVCHARS"
        ]

    def connect(self) -> None:
        import redshift_connector

        s = self.settings
        try:
            self.conn = redshift_connector.connect(
                host=s.redshift_host, port=s.redshift_port, database=s.redshift_database,
                user=s.redshift_user, password=s.redshift_password,
            )
        except Exception as exc:
            raise WarehouseError(
                f"cannot connect to Redshift at {s.redshift_host}:{s.redshift_port}/{s.redshift_database} "
                f"as {s.redshift_user!r}: {type(exc).__name__}"
            ) from None
        self.conn.autocommit = True

    def copy_error_detail(self) -> str:
        rows = self.execute(
            "SELECT TRIM(filename), line_number, TRIM(colname), TRIM(err_reason) "
            "FROM stl_load_errors WHERE query = pg_last_copy_id() ORDER BY starttime DESC LIMIT 5"
        )
        return "; ".join(f"file {r[0]}, line {r[1]}, column {r[2]}: {r[3]}" for r in rows)


class PostgresWarehouse(Warehouse):
    """PostgreSQL has no COPY from S3: the loader streams the parts through COPY FROM STDIN."""

    engine = "postgres"

    def connect(self) -> None:
        import psycopg2

        s = self.settings
        try:
            self.conn = psycopg2.connect(
                host=s.pg_host, port=s.pg_port, dbname=s.pg_database, user=s.pg_user,
                password=s.pg_password or None, connect_timeout=10,
            )
        except psycopg2.Error as exc:
            raise WarehouseError(
                f"cannot connect to PostgreSQL at {s.pg_host}:{s.pg_port}/{s.pg_database} as {s.pg_user!r}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            ) from None
        self.conn.autocommit = True

    def fill_stage_statements(self, table: Table, manifest: dict, folder: str) -> list[str]:
        cols = ", ".join(quote(c) for c in table.column_names)
        # Every non-null value is quoted, so an unquoted empty field (CSV NULL) is only ever NULL.
        return [f"COPY {self.stage_name(table)} ({cols}) FROM STDIN WITH (FORMAT csv)"]

    def fill_stage(self, table: Table, manifest: dict, folder: str) -> None:
        (sql,) = self.fill_stage_statements(table, manifest, folder)
        cur = self.conn.cursor()
        try:
            for part in manifest["parts"]:
                with self.store.fs.open(self.store.full(f"{folder}/{part['path']}"), "rb") as handle:
                    parquet = pq.ParquetFile(handle)
                    for batch in parquet.iter_batches(batch_size=self.settings.batch_rows):
                        buffer = io.BytesIO()
                        pacsv.write_csv(
                            batch, buffer,
                            pacsv.WriteOptions(include_header=False, quoting_style="all_valid"),
                        )
                        buffer.seek(0)
                        cur.copy_expert(sql, buffer)
        finally:
            cur.close()


ENGINES: dict[str, type[Warehouse]] = {
    "duckdb": DuckDBWarehouse,
    "redshift": RedshiftWarehouse,
    "postgres": PostgresWarehouse,
}


def open_warehouse(settings: Settings, store: ObjectStore) -> Warehouse:
    return ENGINES[settings.warehouse](settings, store)


def sequence(statements: Sequence[str | None]) -> list[str]:
    return [s for s in statements if s]


# -- the funnel lake in the warehouse ------------------------------------------------------
# Redshift reads the lake through Spectrum (the Glue table, or macros/spectrum.sql); DuckDB
# reads it in place through a view; PostgreSQL has no external tables, so the loader copies
# each converted file into raw.funnel_events, replacing that file's rows (idempotent).
FUNNEL_TABLE = "funnel_events"


def _funnel_columns(engine: str) -> list[str]:
    from .funnel import SCHEMA

    types = {"string": "VARCHAR(256)" if engine != "duckdb" else "VARCHAR", "timestamp[us]": "TIMESTAMP"}
    return [f"{quote(f.name)} {types[str(f.type)]}" for f in SCHEMA] + ['"year" INTEGER', '"month" INTEGER']


def publish_funnel(wh: Warehouse) -> str:
    """Make the funnel lake readable as raw.funnel_events; return what was done."""
    from .funnel import LAKE, lake_partitions

    name = wh.raw_name(FUNNEL_TABLE)
    if wh.engine == "redshift":
        return "Redshift reads the lake through Spectrum"
    wh.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(wh.schema)}")
    partitions = lake_partitions(wh.store)
    if wh.engine == "duckdb":
        kinds = wh.execute(
            f"SELECT table_type FROM information_schema.tables WHERE table_schema = {literal(wh.schema)} "
            f"AND table_name = {literal(FUNNEL_TABLE)}")
        is_view = bool(kinds) and kinds[0][0] == "VIEW"
        if not partitions:  # an empty table, so the funnel models build before any file lands
            if is_view:
                wh.execute(f"DROP VIEW {name}")
            wh.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(_funnel_columns('duckdb'))})")
            return "no funnel data in the lake yet: raw.funnel_events is empty"
        if kinds and not is_view:
            wh.execute(f"DROP TABLE {name}")
        files = literal(wh.store.uri(LAKE) + "/*/*/*.parquet")
        wh.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({files}, "
                   "hive_partitioning = true, union_by_name = true)")
        return f"raw.funnel_events reads {len(partitions)} month(s) of the lake in place"
    return _copy_funnel_into_postgres(wh, name)


def _copy_funnel_into_postgres(wh: Warehouse, name: str) -> str:
    from .funnel import LAKE, STATE

    wh.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(_funnel_columns('postgres'))})")
    log_table = wh.raw_name("_funnel_log")
    wh.execute(f"CREATE TABLE IF NOT EXISTS {log_table} (source_file VARCHAR(256) PRIMARY KEY, "
               "converted_at TIMESTAMP NOT NULL, rows_loaded BIGINT NOT NULL)")
    loaded = dict(wh.execute(f"SELECT source_file, converted_at FROM {log_table}"))
    copied = 0
    for marker_path in wh.store.glob(f"{STATE}/*.json"):
        marker = wh.store.read_json(marker_path)
        source = marker["source"].rsplit("/", 1)[-1]
        converted_at = datetime_from_iso(marker["converted_at"])
        if loaded.get(source) == converted_at:
            continue
        with wh.transaction():
            wh.execute(f"DELETE FROM {name} WHERE source_file = {literal(source)}")
            rows = 0
            cur = wh.conn.cursor()
            try:
                for path in marker["outputs"]:
                    year, month = (int(part.split("=")[1]) for part in path.split("/")[-3:-1])
                    with wh.store.fs.open(wh.store.full(path), "rb") as handle:
                        for batch in pq.ParquetFile(handle).iter_batches(batch_size=wh.settings.batch_rows):
                            n = batch.num_rows
                            batch = batch.append_column("year", pa.array([year] * n, pa.int32()))
                            batch = batch.append_column("month", pa.array([month] * n, pa.int32()))
                            buffer = io.BytesIO()
                            pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False,
                                                                               quoting_style="all_valid"))
                            buffer.seek(0)
                            cols = ", ".join(quote(c) for c in batch.schema.names)
                            cur.copy_expert(f"COPY {name} ({cols}) FROM STDIN WITH (FORMAT csv)", buffer)
                            rows += batch.num_rows
            finally:
                cur.close()
            wh.execute(f"DELETE FROM {log_table} WHERE source_file = {literal(source)}")
            wh.execute(f"INSERT INTO {log_table} VALUES ({literal(source)}, "
                       f"{literal(marker['converted_at'].replace('T', ' '))}, {rows})")
        copied += 1
    return f"{copied} converted funnel file(s) copied into raw.funnel_events"


def datetime_from_iso(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)
