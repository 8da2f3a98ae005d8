"""DuckDB, the embedded warehouse: reads the Parquet parts (and the funnel lake) in place."""

from __future__ import annotations

from pathlib import Path

from .. import layout
from ..declarations import ROW_HASH_COLUMN, Table
from .base import FUNNEL_TABLE, Warehouse, WarehouseError, part_columns
from .sql import literal, quote


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class DuckDBWarehouse(Warehouse):
    name = "duckdb"
    hashes_while_staging = True

    def connect(self) -> None:
        import duckdb

        path = self.settings.duckdb_path
        if self.read_only and not Path(path).is_file():
            raise WarehouseError(f"no DuckDB warehouse at {path} yet: run `dwh load` (or `dwh demo`) first")
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.conn = duckdb.connect(path, read_only=self.read_only)
        except duckdb.Error as exc:
            busy = " (another process is writing it: a load or a build; try again when it is done)"
            raise WarehouseError(
                f"cannot open DuckDB file {path}: {_first_line(exc)}{busy if 'lock' in str(exc).lower() else ''}"
            ) from None
        if self.store.is_s3:  # DuckDB reads s3:// through the same fsspec filesystem
            self.conn.register_filesystem(self.store.fs)

    def execute(self, sql: str) -> list[tuple]:
        from .base import log

        log.debug("warehouse SQL: %s", sql)
        return self.conn.execute(sql).fetchall()

    def fill_stage_statements(self, table: Table, manifest: dict, folder: str) -> list[str]:
        """One INSERT from the parts read in place; for a batch whose parts lack `_row_hash`
        (since issue 18) the same statement computes it (`hashes_while_staging`): one pass over
        the rows, where an UPDATE of the stage afterwards took a second one."""
        from ..verify.checksum import row_hash_sql

        files = ", ".join(literal(self.store.uri(f"{folder}/{p['path']}")) for p in manifest["parts"])
        names = [quote(c) for c in part_columns(table, manifest)]
        values = list(names)
        if self.hashes_missing(manifest):
            names.append(quote(ROW_HASH_COLUMN))
            values.append(row_hash_sql(self.name, table.columns))
        return [
            f"INSERT INTO {self.stage_name(table)} ({', '.join(names)}) "
            f"SELECT {', '.join(values)} FROM read_parquet([{files}])"
        ]

    def publish_funnel(self) -> str:
        """A view over the Parquet lake in place; an empty table until the lake has a file, so
        the funnel models build before any file lands."""
        name = self.raw_name(FUNNEL_TABLE)
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
        partitions = self.lake_partitions()
        kinds = self.execute(
            f"SELECT table_type FROM information_schema.tables WHERE table_schema = {literal(self.schema)} "
            f"AND table_name = {literal(FUNNEL_TABLE)}"
        )
        is_view = bool(kinds) and kinds[0][0] == "VIEW"
        if not partitions:
            if is_view:
                self.execute(f"DROP VIEW {name}")
            self.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(self.funnel_column_defs())})")
            return "no funnel data in the lake yet: raw.funnel_events is empty"
        if kinds and not is_view:
            self.execute(f"DROP TABLE {name}")
        files = literal(self.store.uri(layout.FUNNEL_LAKE) + "/*/*/*.parquet")
        self.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({files}, "
            "hive_partitioning = true, union_by_name = true)"
        )
        return f"raw.funnel_events reads {len(partitions)} month(s) of the lake in place"
