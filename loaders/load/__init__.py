"""Load: published batches into the warehouse's raw tables, exactly once.

loader.py      the load transaction of one batch; every pending batch of a table; tables at once
batches.py     finding batches in the store, checking their parts
statements.py  the SQL of a batch's load, as the warehouse receives it
"""

from .batches import LoadError, list_batches, verify_parts
from .loader import (
    BatchLoadReport,
    ensure_raw_tables,
    load_batch,
    load_memory_mb,
    load_pending_batches,
    load_table,
    load_tables,
)
from .statements import batch_statements, insert_statement

__all__ = [
    "BatchLoadReport",
    "LoadError",
    "batch_statements",
    "ensure_raw_tables",
    "insert_statement",
    "list_batches",
    "load_batch",
    "load_memory_mb",
    "load_pending_batches",
    "load_table",
    "load_tables",
    "verify_parts",
]
