"""`dwh batches`: the batches a load set aside (or that failed) and that are still not loaded.

A batch the warehouse refuses, or whose parts or manifest do not check out, is set aside by
`dwh load` (loaders/pipeline.py, contract 13): nothing of it is loaded, its table's later
batches wait, the run history (`raw._run_history`) records the unit as `set_aside` with the
batch id and the reason, and every later load tries it again. This module lists them from
the run history and the load log; `dwh batches --retry` loads their tables now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .config import Settings
from .declarations import declared_tables
from .history import failed_batches, has_history
from .load import list_batches
from .store import ObjectStore
from .warehouses import LOAD_LOG, open_warehouse


@dataclass(frozen=True)
class SetAsideBatch:
    """One batch not loaded since a load failed on it; `error` is that load's error line."""

    table: str
    batch_id: str
    status: str  # set_aside | failed
    failed_at: datetime | None
    error: str | None
    published: bool  # its folder still has a manifest (False: removed from the store since)


def set_aside_batches(settings: Settings) -> list[SetAsideBatch]:
    """Every batch a load failed on or set aside and that is not in the load log, oldest
    first, with its latest failure. Opens the warehouse read-only."""
    store = ObjectStore(settings.store_url, settings)
    with open_warehouse(settings, store, read_only=True) as wh:
        if not has_history(wh):
            return []
        rows = failed_batches(wh)
        loaded = (
            {r[0] for r in wh.execute(f"SELECT batch_id FROM {wh.raw_name(LOAD_LOG)}")}
            if wh.has_table(LOAD_LOG)
            else set()
        )
    tables = declared_tables(settings.project_dir)
    found: dict[str, SetAsideBatch] = {}
    for row in rows:  # oldest first: a later failure of the same batch replaces the earlier one
        table = tables.get(row["unit_name"])
        published = {b for b, _ in list_batches(store, table)} if table else set()
        for batch_id in str(row["batch_ids"]).split():
            if batch_id in loaded:
                continue
            found[batch_id] = SetAsideBatch(
                row["unit_name"],
                batch_id,
                row["status"],
                row["finished_at"] or row["started_at"],
                row["error_message"],
                batch_id in published,
            )
    return sorted(found.values(), key=lambda b: (b.table, b.batch_id))
