"""The funnel lake: the vendor's CSV files -> year/month Parquet (docs/architecture.md, contract 6).

convert.py  one landing file -> its Parquet files, rejects and marker
glue.py     the Glue Data Catalog table and partitions
"""

from .convert import (
    EVENT_TYPES,
    FUNNEL_HEADER,
    SCHEMA,
    ConvertReport,
    FunnelError,
    convert_file,
    convert_pending,
    lake_partitions,
    land_files,
    landing_files,
)
from .glue import CatalogError, GlueCatalog

__all__ = [
    "EVENT_TYPES",
    "FUNNEL_HEADER",
    "SCHEMA",
    "CatalogError",
    "ConvertReport",
    "FunnelError",
    "GlueCatalog",
    "convert_file",
    "convert_pending",
    "land_files",
    "lake_partitions",
    "landing_files",
]
