"""A table's watermark (docs/architecture.md, contract 3).

The cursor up to which every row has been extracted. Stored at `olist/<table>/_state.json`;
advanced only after a batch's manifest is written.
"""

from __future__ import annotations

from datetime import datetime

from .. import layout
from ..declarations import Table
from ..store import ObjectStore


def read_watermark(store: ObjectStore, table: Table) -> datetime | None:
    """The table's watermark, or None before its first extract."""
    path = layout.state_path(table.name)
    if not store.exists(path):
        return None
    state = store.read_json(path)
    # a first historical extract still running (or killed) has a checkpoint and no watermark yet
    return datetime.fromisoformat(state["watermark"]) if state.get("watermark") else None


def write_watermark(store: ObjectStore, table: Table, upper: datetime, batch_id: str | None) -> None:
    """Advance the watermark to `upper`; the new state replaces the old one (a resume checkpoint
    included, loaders/extract/resume.py)."""
    store.write_json(
        layout.state_path(table.name),
        {"table": table.name, "watermark": upper.isoformat(), "last_batch_id": batch_id},
    )
