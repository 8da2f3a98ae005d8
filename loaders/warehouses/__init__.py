"""The warehouse: one class per engine, chosen by `DWH_WAREHOUSE` (also the dbt target).

How a batch's Parquet parts reach a temporary stage table differs per engine:
  duckdb    INSERT INTO stage SELECT ... FROM read_parquet([...])   (local or s3:// via fsspec)
  redshift  COPY stage FROM '<batch>/_copy.manifest' IAM_ROLE ... FORMAT AS PARQUET MANIFEST
  postgres  COPY stage FROM STDIN, fed from the parts by pyarrow
Everything else (loaders/load/) is the same SQL for every engine.
"""

from __future__ import annotations

from typing import get_args

from ..config import Settings, WarehouseName
from ..store import ObjectStore
from .base import FUNNEL_TABLE, LOAD_LOG, Warehouse, WarehouseError
from .duckdb import DuckDBWarehouse
from .postgres import PostgresWarehouse
from .redshift import RedshiftWarehouse
from .sql import literal, quote, timestamp

ENGINES: dict[str, type[Warehouse]] = {cls.name: cls for cls in (DuckDBWarehouse, PostgresWarehouse, RedshiftWarehouse)}
assert set(ENGINES) == set(get_args(WarehouseName))


def open_warehouse(settings: Settings, store: ObjectStore, read_only: bool = False) -> Warehouse:
    """The configured warehouse (not yet connected: use it as a context manager). `read_only`
    for readers: DuckDB then takes no write lock, so a load or a build can run meanwhile."""
    return ENGINES[settings.warehouse](settings, store, read_only)


__all__ = [
    "ENGINES",
    "FUNNEL_TABLE",
    "LOAD_LOG",
    "DuckDBWarehouse",
    "PostgresWarehouse",
    "RedshiftWarehouse",
    "Warehouse",
    "WarehouseError",
    "literal",
    "open_warehouse",
    "quote",
    "timestamp",
]
