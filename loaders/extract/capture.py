"""One binlog capture run of one table -> at most one batch (contract 11; loaders/extract/binlog.py).

The batch is written like every other: Parquet parts typed to the declaration plus the change
columns (`_op`, `_row_hash`, `_change_seq`), Redshift's COPY manifest, then `_manifest.json`,
whose `binlog` entry records the start and end positions. Its mode is `current` (an
incremental batch), its `capture` is `binlog`. The stored position advances after the manifest.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..config import Settings
from ..declarations import Table
from ..manifest import MANIFEST_VERSION, logical_name, write_manifests
from ..sources import SourceEngine
from ..store import ObjectStore
from .batch import BatchReport, _discard_batch, new_batch_id
from .binlog import Position, SchemaChangeError, _to_batch, adopt_published, read_changes
from .parts import ExtractError, PartWriter, conform, with_change_columns
from .watermark import read_state, write_watermark

log = logging.getLogger("loaders.extract")


def stored_position(store: ObjectStore, table: Table) -> Position | None:
    """The table's stored binary-log position, or None (no state, or a state from the cursor mode)."""
    state = read_state(store, table)
    if state is None or not state.get("binlog"):
        return None
    return Position.from_json(state["binlog"])


def capture_table(
    settings: Settings,
    engine: SourceEngine,
    store: ObjectStore,
    table: Table,
    end: Position,
    upper: datetime,
) -> BatchReport:
    """Write the table's changes from its stored position up to `end` as one batch and advance
    the position (`upper`: the source's clock at the run's start, the batch's cursor upper bound).

    Raises ExtractError when the table has no stored position, PositionLostError when the
    server purged it, SchemaChangeError (after publishing the changes before the schema change
    and advancing the position to just before it) and SourceError."""
    started = time.perf_counter()
    start = stored_position(store, table)
    if start is None:
        raise ExtractError(f"table {table.name!r} has no binary-log position in {store.url}: run a historical extract")
    adopted = adopt_published(store, table, start)
    if adopted is not None:  # a run stopped between its manifest and the position: take it over
        log.info("table %s: the batch from %s is published; the position moves to %s", table.name, start, adopted)
        write_watermark(store, table, upper, None, adopted.to_json())
        start = adopted
    batch_id = new_batch_id()
    folder = layout.batch_dir(table.name, "current", batch_id)
    writer = PartWriter(store, folder, table, settings)
    schema = table.arrow_schema()
    rows = 0
    stop: Position | None = None
    stopped: SchemaChangeError | None = None
    max_cursor = None
    try:
        try:
            for chunk, ops, before_schema_change in read_changes(engine, table, start, end, settings.batch_rows):
                if before_schema_change is not None:
                    stop = before_schema_change
                    continue
                batch = conform(_to_batch(table, chunk), schema, table)
                batch_max = pc.max(batch.column(table.cursor)).as_py()
                if batch_max is not None and (max_cursor is None or batch_max > max_cursor):
                    max_cursor = batch_max
                writer.write(_with_ops(batch, table, ops, rows))
                rows += batch.num_rows
        except SchemaChangeError as exc:
            stopped = exc
        parts = writer.finish()
    except BaseException:
        writer.abort()
        _discard_batch(store, folder)
        raise
    reached = stop if stopped is not None and stop is not None else end
    report = BatchReport(table.name, "current", None, lower=None, upper=upper)
    if rows:
        manifest: dict[str, Any] = {
            "version": MANIFEST_VERSION,
            "table": table.name,
            "batch_id": batch_id,
            "mode": "current",
            "capture": "binlog",
            "created_at": datetime.now(UTC).isoformat(),
            "source_dialect": engine.name,
            "format": "parquet",
            "compression": settings.parquet_compression,
            "cursor": {
                "column": table.cursor,
                "lower": None,
                "upper": upper.isoformat(),
                "max": max_cursor.isoformat() if max_cursor else None,
            },
            "binlog": {"start": start.to_json(), "end": reached.to_json()},
            "primary_key": list(table.primary_key),
            "columns": [
                {"name": c.name, "type": logical_name(c.type), "arrow": str(c.type.arrow())} for c in table.columns
            ],
            "change_columns": ["_op", "_row_hash", "_change_seq"],
            "snapshot": False,
            "dedupe": False,  # exactly-once by its log range: every change is a version
            "row_count": rows,
            "parts": [{**asdict(p), "path": p.path.rsplit("/", 1)[1]} for p in parts],
        }
        write_manifests(store, folder, manifest, parts)
        report.batch_id, report.rows, report.parts = batch_id, rows, parts
        report.bytes = sum(p.bytes for p in parts)
        report.manifest = store.uri(layout.batch_manifest(folder))
    else:
        _discard_batch(store, folder)
    write_watermark(store, table, upper, report.batch_id, reached.to_json())
    report.seconds = time.perf_counter() - started
    log.info(
        "captured %s (binlog %s -> %s): %d changes in %d parts, %.1fs",
        table.name,
        start,
        reached,
        rows,
        len(report.parts),
        report.seconds,
    )
    if stopped is not None:
        raise stopped
    return report


def _with_ops(batch: pa.RecordBatch, table: Table, ops: list[str], first_seq: int) -> pa.RecordBatch:
    """The batch with the change columns of contract 8, `_op` per row (`ops`), `_change_seq`
    counting from `first_seq` in commit order."""
    full = with_change_columns(batch, table, "u", first_seq)
    index = full.schema.get_field_index("_op")
    return full.set_column(index, full.schema.field(index), pa.array(ops, pa.string()))
