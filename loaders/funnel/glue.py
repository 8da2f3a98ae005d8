"""The Glue Data Catalog: the funnel lake's database, table and partitions.

The converter registers each new (year, month) partition right after publishing it, so the
data is queryable through Spectrum or Athena at once, with no crawler to wait for. The
database and the table are created on first use. Partitions are added 100 per call (Glue's
limit for BatchCreatePartition); one that already exists is not an error.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import layout
from ..config import ConfigError, Settings
from ..declarations import funnel_declaration
from ..store import ObjectStore

log = logging.getLogger("loaders.funnel")
PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


class CatalogError(RuntimeError):
    """Glue refused a request; the message names the database, table or partition."""


class GlueCatalog:
    """The funnel lake's Glue database and table (columns from the funnel's declaration)."""

    def __init__(self, settings: Settings, store: ObjectStore):
        if not store.is_s3:
            raise ConfigError("DWH_GLUE_DATABASE is set but DWH_STORE_URL is not s3://: Glue tables live on S3")
        from ..aws.clients import client

        self.settings, self.store = settings, store
        self.database, self.table = settings.glue_database, settings.glue_table
        self.location = store.uri(layout.FUNNEL_LAKE) + "/"
        declaration = funnel_declaration(settings.project_dir)
        self.columns = [{"Name": n, "Type": t} for n, t in declaration.glue_columns()]
        self.partition_keys = [{"Name": c.name, "Type": c.type.hive()} for c in declaration.partition_columns]
        self.client = client("glue", region_name=settings.aws_region, endpoint_url=settings.glue_endpoint_url)

    def _storage(self, location: str, with_columns: bool = True) -> dict:
        storage: dict[str, Any] = {"Location": location, **PARQUET}
        if with_columns:
            storage["Columns"] = self.columns  # models/staging/funnel/_funnel__sources.yml
        return storage

    def ensure_table(self) -> None:
        glue = self.client
        try:
            glue.get_database(Name=self.database)
        except glue.exceptions.EntityNotFoundException:
            log.info("creating Glue database %s", self.database)
            glue.create_database(DatabaseInput={"Name": self.database, "Description": "Olist funnel lake (olist-dwh)"})
        try:
            glue.get_table(DatabaseName=self.database, Name=self.table)
        except glue.exceptions.EntityNotFoundException:
            log.info("creating Glue table %s.%s at %s", self.database, self.table, self.location)
            glue.create_table(
                DatabaseName=self.database,
                TableInput={
                    "Name": self.table,
                    "TableType": "EXTERNAL_TABLE",
                    "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
                    "PartitionKeys": self.partition_keys,
                    "StorageDescriptor": self._storage(self.location),
                },
            )

    def add_partitions(self, partitions: list[tuple[int, int]]) -> int:
        """Register (year, month) partitions; return how many were new."""
        self.ensure_table()
        added = 0
        for start in range(0, len(partitions), 100):
            chunk = partitions[start : start + 100]
            response = self.client.batch_create_partition(
                DatabaseName=self.database,
                TableName=self.table,
                PartitionInputList=[
                    {
                        "Values": [str(year), str(month)],
                        "StorageDescriptor": self._storage(f"{self.location}{layout.partition_name(year, month)}/"),
                    }
                    for year, month in chunk
                ],
            )
            errors = [
                e
                for e in response.get("Errors", [])
                if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"
            ]
            if errors:
                first = errors[0]
                raise CatalogError(
                    f"Glue refused partition {first.get('PartitionValues')} of {self.database}.{self.table}: "
                    f"{first.get('ErrorDetail', {}).get('ErrorMessage')}"
                )
            added += len(chunk) - len(response.get("Errors", []))
        return added

    def partitions(self) -> list[tuple[int, int]]:
        pages = self.client.get_paginator("get_partitions").paginate(DatabaseName=self.database, TableName=self.table)
        return sorted((int(p["Values"][0]), int(p["Values"][1])) for page in pages for p in page["Partitions"])
