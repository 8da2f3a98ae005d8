"""A table's watermark (docs/architecture.md, contract 3) and, in binlog capture, its position.

The cursor up to which every row has been extracted. Stored at `olist/<table>/_state.json`;
advanced only after a batch's manifest is written. With DWH_CAPTURE=binlog the same file also
holds `binlog`: the binary-log position up to which every change of the table is in a
published batch (loaders/extract/binlog.py), advanced the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import layout
from ..declarations import Table
from ..store import ObjectStore
from .parts import ExtractError


def read_state(store: ObjectStore, table: Table) -> dict[str, Any] | None:
    """The table's whole state document, or None before its first extract.

    Raises ExtractError naming the state file when it is not a JSON object (StoreError when it
    is not JSON at all)."""
    path = layout.state_path(table.name)
    if not store.exists(path):
        return None
    state = store.read_json(path)
    if not isinstance(state, dict):
        where = f"table {table.name!r}: state file {store.uri(path)}"
        raise ExtractError(f"{where} has no 'watermark'; delete it to extract the table again from scratch")
    return state


def read_watermark(store: ObjectStore, table: Table) -> datetime | None:
    """The table's watermark, or None before its first extract.

    Checked, not trusted (contract 13): ExtractError names the state file when it is not a
    JSON object, has no `watermark`, or its value is not an ISO timestamp (StoreError when it
    is not JSON at all)."""
    state = read_state(store, table)
    if state is None:
        return None
    where = f"table {table.name!r}: state file {store.uri(layout.state_path(table.name))}"
    if "watermark" not in state:
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


def write_watermark(
    store: ObjectStore, table: Table, upper: datetime, batch_id: str | None, binlog: dict[str, Any] | None = None
) -> None:
    """Write the table's state: watermark `upper`, the last batch id and (binlog capture) the
    binary-log position as `{"file", "pos", "gtid"}`; without `binlog` the state has none, so a
    later binlog run starts with a historical extract. The new state replaces the old one (a
    resume checkpoint included, loaders/extract/resume.py)."""
    doc: dict[str, Any] = {"table": table.name, "watermark": upper.isoformat(), "last_batch_id": batch_id}
    if binlog is not None:
        doc["binlog"] = binlog
    store.write_json(layout.state_path(table.name), doc)
