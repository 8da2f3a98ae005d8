"""The funnel lake: the vendor's CSV files -> year/month Parquet (docs/architecture.md, contract 6).

The events' columns are declared once, in models/staging/funnel/_funnel__sources.yml
(`loaders.declarations.funnel_declaration`). convert.py orchestrates one file's conversion; its
docstring lists the module of each job (blocks, parse, validate, months, producer, writers,
rejects, publish, glue).
"""

from .convert import (
    ConvertReport,
    convert_file,
    convert_pending,
    lake_partitions,
    land_files,
    landing_files,
    output_stem,
    source_key,
)
from .glue import CatalogError, GlueCatalog
from .parse import FunnelError

__all__ = [
    "CatalogError",
    "ConvertReport",
    "FunnelError",
    "GlueCatalog",
    "convert_file",
    "convert_pending",
    "land_files",
    "lake_partitions",
    "landing_files",
    "output_stem",
    "source_key",
]
