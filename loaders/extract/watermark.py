"""A table's watermark (docs/architecture.md, contract 3).

The cursor up to which every row has been extracted. Stored at `olist/<table>/_state.json`;
advanced only after a batch's manifest is written.
"""

from __future__ import annotations

from datetime import datetime

from .. import layout
from ..declarations import Table
from ..store import ObjectStore
from .parts import ExtractError


def read_watermark(store: ObjectStore, table: Table) -> datetime | None:
    """The table's watermark, or None before its first extract.

    Checked, not trusted (contract 13): ExtractError names the state file when it is not a
    JSON object, has no `watermark`, or its value is not an ISO timestamp (StoreError when it
    is not JSON at all)."""
    path = layout.state_path(table.name)
    if not store.exists(path):
        return None
    state = store.read_json(path)
    where = f"table {table.name!r}: state file {store.uri(path)}"
    if not isinstance(state, dict) or "watermark" not in state:
        raise ExtractError(f"{where} has no 'watermark'; delete it to extract the table again from scratch")
    value = state["watermark"]
    if value is None:  # a first historical extract still running (or killed) has a checkpoint only
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ExtractError(
            f"{where}: 'watermark' is {value!r}, not a timestamp like 2026-11-30T08:00:00; "
            "fix it, or delete the file to extract the table again from scratch"
        ) from None


def write_watermark(store: ObjectStore, table: Table, upper: datetime, batch_id: str | None) -> None:
    """Advance the watermark to `upper`; the new state replaces the old one (a resume checkpoint
    included, loaders/extract/resume.py)."""
    store.write_json(
        layout.state_path(table.name),
        {"table": table.name, "watermark": upper.isoformat(), "last_batch_id": batch_id},
    )
