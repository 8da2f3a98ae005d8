"""Extract: each declared table from the source into one batch in the object store.

batch.py      one run of one table -> one batch (parts, manifests, watermark)
queries.py    the SELECTs, built from parts
readers.py    rows from the source as Arrow record batches (threads, pages, streams)
parts.py      rows into Parquet parts, typed to the declaration
watermark.py  the table's watermark state
"""

from .batch import BatchReport, extract_table, new_batch_id
from .parts import ExtractError
from .queries import build_query
from .watermark import read_watermark

__all__ = ["BatchReport", "ExtractError", "build_query", "extract_table", "new_batch_id", "read_watermark"]
