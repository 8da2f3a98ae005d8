"""Resumable historical extracts: the checkpoint in the table's state (`olist/<table>/_state.json`).

A historical extract of a large table runs for hours. Each time a Parquet part is closed, every
row written so far is in finished parts, and the extract records in the table's state, under
`resume`: the batch (id, folder, the run's upper bound), the finished parts, and for each key
range the page key of its last row in those parts (or that the range is done). A rerun after a
kill (`auto` or `historical` mode) finds the checkpoint, checks its parts against the store,
removes what the killed run wrote after it, and goes on from there into the same folder; it
publishes ONE batch whose manifest lists every part, as an uninterrupted extract would. The
watermark write that ends the extract replaces the state, checkpoint included.

A checkpoint whose parts are missing, whose columns are no longer the declared ones, or whose
parts hold other metadata columns than parts are written with now (before issue 18 they held
`_row_hash`) is dropped
(the extract starts again from zero, one log line says why). Key values are kept as JSON: a key
whose values are not strings or integers is not checkpointed (the extract still works, it just
cannot resume).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .. import layout
from ..declarations import CHANGE_COLUMNS, PART_CHANGE_COLUMNS, Table
from ..manifest import Part
from ..store import ObjectStore
from .queries import KeyRange

log = logging.getLogger("loaders.extract")
CHECKPOINT = "resume"
"""The key of the checkpoint in the table's state document."""


@dataclass
class Checkpoint:
    """Where a historical extract stands: every row before each range's `after` key is in `parts`."""

    batch_id: str
    folder: str
    upper: datetime
    ranges: list[KeyRange]
    parts: list[Part]
    max_cursor: datetime | None
    columns: list[str]
    change_columns: list[str] = field(default_factory=lambda: list(PART_CHANGE_COLUMNS))
    """The metadata columns of its parts (a checkpoint written before issue 18 had `_row_hash`)."""

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)


def storable(value: object) -> bool:
    """Whether a key value survives the trip through JSON unchanged."""
    if isinstance(value, (list, tuple)):
        return all(storable(v) for v in value)
    return value is None or (isinstance(value, (int, str)) and not isinstance(value, bool))


def _state(store: ObjectStore, table: Table) -> dict[str, Any]:
    path = layout.state_path(table.name)
    return store.read_json(path) if store.exists(path) else {"table": table.name, "watermark": None}


def write_checkpoint(store: ObjectStore, table: Table, cp: Checkpoint) -> None:
    """Record the checkpoint in the table's state, keeping its watermark."""
    state = _state(store, table)
    state[CHECKPOINT] = {
        "batch_id": cp.batch_id,
        "folder": cp.folder,
        "upper": cp.upper.isoformat(),
        "ranges": [
            {"start": r.start, "end": r.end, "after": list(r.after) if r.after else None, "done": r.done}
            for r in cp.ranges
        ],
        "parts": [asdict(p) for p in cp.parts],
        "max_cursor": cp.max_cursor.isoformat() if cp.max_cursor else None,
        "columns": cp.columns,
        "change_columns": cp.change_columns,
    }
    store.write_json(layout.state_path(table.name), state)


def read_checkpoint(store: ObjectStore, table: Table) -> Checkpoint | None:
    """The table's checkpoint if it can be resumed, else None (a stale one is dropped and its
    folder removed, with one log line)."""
    state = _state(store, table)
    doc = state.get(CHECKPOINT)
    if not isinstance(doc, dict):
        return None
    try:
        cp = Checkpoint(
            batch_id=doc["batch_id"],
            folder=doc["folder"],
            upper=datetime.fromisoformat(doc["upper"]),
            ranges=[
                KeyRange(r["start"], r["end"], tuple(r["after"]) if r["after"] is not None else None, r["done"])
                for r in doc["ranges"]
            ],
            parts=[Part(**p) for p in doc["parts"]],
            max_cursor=datetime.fromisoformat(doc["max_cursor"]) if doc["max_cursor"] else None,
            columns=list(doc["columns"]),
            change_columns=list(doc.get("change_columns", CHANGE_COLUMNS)),  # before issue 18: with `_row_hash`
        )
    except (KeyError, TypeError, ValueError) as exc:
        _drop(store, table, state, doc, f"unreadable checkpoint ({exc})")
        return None
    if cp.columns != list(table.column_names):
        _drop(store, table, state, doc, "the declared columns changed")
        return None
    if cp.change_columns != list(PART_CHANGE_COLUMNS):  # one batch, one part layout
        why = f"its parts hold {cp.change_columns}, parts now hold {list(PART_CHANGE_COLUMNS)}"
        _drop(store, table, state, doc, why)
        return None
    for part in cp.parts:
        try:
            size = store.info(part.path).size
        except Exception:
            size = -1
        if size != part.bytes:
            _drop(store, table, state, doc, f"part {store.uri(part.path)} is missing or changed")
            return None
    return cp


def has_checkpoint(store: ObjectStore, table: Table) -> bool:
    """Whether the table's state holds a historical extract to resume (cheap: no part check)."""
    path = layout.state_path(table.name)
    return store.exists(path) and isinstance(store.read_json(path).get(CHECKPOINT), dict)


def tidy_folder(store: ObjectStore, cp: Checkpoint) -> None:
    """Remove what the killed run wrote after the checkpoint (later parts, temporary files)."""
    kept = {p.path for p in cp.parts}
    for path in store.glob(f"{cp.folder}/*"):
        if path not in kept:
            store.delete(path)


def _drop(store: ObjectStore, table: Table, state: dict, doc: dict, why: str) -> None:
    log.warning("table %s: not resuming the historical extract in %s: %s", table.name, doc.get("folder"), why)
    folder = doc.get("folder")
    if (
        isinstance(folder, str)
        and layout.parse_batch_folder(folder)
        and not store.exists(layout.batch_manifest(folder))  # never a published batch
    ):
        store.delete(folder)
    state.pop(CHECKPOINT, None)
    store.write_json(layout.state_path(table.name), state)
