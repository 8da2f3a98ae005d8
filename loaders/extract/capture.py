"""One binlog capture run: one pass over the log for all tables -> at most one batch per table
(contract 11; loaders/extract/binlog.py).

Each table's batch is written like every other: Parquet parts typed to the declaration plus the change
columns (`_op`, `_change_seq`; the load adds `_row_hash`), Redshift's COPY manifest, then `_manifest.json`,
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
from ..declarations import PART_CHANGE_COLUMNS, Table
from ..manifest import MANIFEST_VERSION, logical_name, write_manifests
from ..sources import SourceEngine
from ..store import ObjectStore
from .batch import BatchReport, _discard_batch, new_batch_id
from .binlog import LogPass, Position, _to_batch, adopt_published, check_position
from .parts import ExtractError, PartWriter, conform, with_change_columns
from .watermark import read_state, write_watermark

log = logging.getLogger("loaders.extract")


def stored_position(store: ObjectStore, table: Table) -> Position | None:
    """The table's stored binary-log position, or None (no state, or a state from the cursor mode)."""
    state = read_state(store, table)
    if state is None or not state.get("binlog"):
        return None
    return Position.from_json(state["binlog"])


def capture_tables(
    settings: Settings,
    engine: SourceEngine,
    store: ObjectStore,
    tables: list[Table],
    end: Position,
    upper: datetime,
) -> dict[str, BatchReport | Exception]:
    """Write each table's changes from its stored position up to `end` as one batch per table and
    advance each position, reading the binary log once for all of them (`LogPass`). `upper`: the
    source's clock at the run's start, the batches' cursor upper bound.

    Returns, per table name, its report or the exception that failed it, so that one table costs
    only itself (contract 13): ExtractError when it has no stored position, PositionLostError when
    the server purged it, SchemaChangeError or PartialImageError (after publishing the changes before the schema change
    and advancing the position to just before it), SourceError (the log could not be read: every
    table still being read gets it), or whatever failed writing its batch. Each table's batch is
    published (parts, manifest, then its position) after the pass, in the order of `tables`;
    an interruption (BaseException) discards the batches not yet published and propagates."""
    results: dict[str, BatchReport | Exception] = {}
    batches: dict[str, _TableBatch] = {}
    try:
        for table in tables:
            try:
                batches[table.name] = _TableBatch.begin(settings, engine, store, table, end, upper)
            except Exception as exc:
                results[table.name] = exc
        reader = LogPass(engine, {n: (b.table, b.start) for n, b in batches.items()}, end, settings.batch_rows)
        try:
            for chunk in reader:
                batch = batches[chunk.table]
                if chunk.stopped is not None:
                    batch.stopped, batch.stop = chunk.stopped, chunk.at
                    continue
                try:
                    batch.add(chunk.rows, chunk.ops)
                except Exception as exc:  # this table's batch failed: the others go on
                    reader.drop(chunk.table)
                    batch.discard()
                    results[chunk.table] = exc
        except Exception as exc:  # the log could not be read: every table still reading fails
            for name, batch in batches.items():
                if name not in results:
                    batch.discard()
                    results[name] = exc
        for name, batch in batches.items():
            if name in results:
                continue
            try:
                results[name] = batch.publish()
            except Exception as exc:
                results[name] = exc
    except BaseException:
        for batch in batches.values():
            batch.discard()
        raise
    return results


class _TableBatch:
    """One table's batch in a binlog pass: its start position, its part writer, what it holds."""

    def __init__(
        self,
        settings: Settings,
        engine: SourceEngine,
        store: ObjectStore,
        table: Table,
        start: Position,
        end: Position,
        upper: datetime,
    ):
        self.settings, self.engine, self.store, self.table = settings, engine, store, table
        self.start, self.end, self.upper = start, end, upper
        self.started = time.perf_counter()
        self.batch_id = new_batch_id()
        self.folder = layout.batch_dir(table.name, "current", self.batch_id)
        self.writer = PartWriter(store, self.folder, table, settings)
        self.schema = table.arrow_schema()
        self.rows = 0
        self.max_cursor: Any = None
        self.stop: Position | None = None
        self.stopped: ExtractError | None = None
        self.done = False

    @classmethod
    def begin(
        cls, settings: Settings, engine: SourceEngine, store: ObjectStore, table: Table, end: Position, upper: datetime
    ) -> _TableBatch:
        """The table's batch from its stored position (raises ExtractError without one,
        PositionLostError when the server purged it). A run stopped between its manifest and the
        position is taken over first: the position moves to that batch's end (`adopt_published`)."""
        start = stored_position(store, table)
        if start is None:
            raise ExtractError(
                f"table {table.name!r} has no binary-log position in {store.url}: run a historical extract"
            )
        adopted = adopt_published(store, table, start)
        if adopted is not None:
            log.info("table %s: the batch from %s is published; the position moves to %s", table.name, start, adopted)
            write_watermark(store, table, upper, None, adopted.to_json())
            start = adopted
        if start.key < end.key:
            check_position(engine, table, start)
        return cls(settings, engine, store, table, start, end, upper)

    def add(self, rows: list[list[Any]], ops: list[str]) -> None:
        """Conform a chunk of row versions to the declaration and write it (with the change columns)."""
        batch = conform(_to_batch(self.table, rows), self.schema, self.table)
        batch_max = pc.max(batch.column(self.table.cursor)).as_py()
        if batch_max is not None and (self.max_cursor is None or batch_max > self.max_cursor):
            self.max_cursor = batch_max
        self.writer.write(_with_ops(batch, self.table, ops, self.rows))
        self.rows += batch.num_rows

    def discard(self) -> None:
        """Abort the writer and remove the unpublished batch folder (once)."""
        if not self.done:
            self.done = True
            self.writer.abort()
            _discard_batch(self.store, self.folder)

    def publish(self) -> BatchReport:
        """Finish the parts, write the manifest (when there are rows), then advance the stored
        position; raises the table's SchemaChangeError or PartialImageError after that when one stopped it."""
        table, settings = self.table, self.settings
        try:
            parts = self.writer.finish()
        except BaseException:
            self.discard()
            raise
        self.done = True
        reached = self.stop if self.stopped is not None and self.stop is not None else self.end
        report = BatchReport(table.name, "current", None, lower=None, upper=self.upper)
        if self.rows:
            manifest: dict[str, Any] = {
                "version": MANIFEST_VERSION,
                "table": table.name,
                "batch_id": self.batch_id,
                "mode": "current",
                "capture": "binlog",
                "created_at": datetime.now(UTC).isoformat(),
                "source_dialect": self.engine.name,
                "format": "parquet",
                "compression": settings.parquet_compression,
                "cursor": {
                    "column": table.cursor,
                    "lower": None,
                    "upper": self.upper.isoformat(),
                    "max": self.max_cursor.isoformat() if self.max_cursor else None,
                },
                "binlog": {"start": self.start.to_json(), "end": reached.to_json()},
                "primary_key": list(table.primary_key),
                "columns": [
                    {"name": c.name, "type": logical_name(c.type), "arrow": str(c.type.arrow())} for c in table.columns
                ],
                "change_columns": list(PART_CHANGE_COLUMNS),
                "snapshot": False,
                "dedupe": False,  # exactly-once by its log range: every change is a version
                "row_count": self.rows,
                "parts": [{**asdict(p), "path": p.path.rsplit("/", 1)[1]} for p in parts],
            }
            write_manifests(self.store, self.folder, manifest, parts)
            report.batch_id, report.rows, report.parts = self.batch_id, self.rows, parts
            report.bytes = sum(p.bytes for p in parts)
            report.manifest = self.store.uri(layout.batch_manifest(self.folder))
        else:
            _discard_batch(self.store, self.folder)
        write_watermark(self.store, table, self.upper, report.batch_id, reached.to_json())
        report.seconds = time.perf_counter() - self.started
        log.info(
            "captured %s (binlog %s -> %s): %d changes in %d parts, %.1fs",
            table.name,
            self.start,
            reached,
            self.rows,
            len(report.parts),
            report.seconds,
        )
        if self.stopped is not None:
            raise self.stopped
        return report


def _with_ops(batch: pa.RecordBatch, table: Table, ops: list[str], first_seq: int) -> pa.RecordBatch:
    """The batch with the change columns of contract 8, `_op` per row (`ops`), `_change_seq`
    counting from `first_seq` in commit order."""
    full = with_change_columns(batch, table, "u", first_seq)
    index = full.schema.get_field_index("_op")
    return full.set_column(index, full.schema.field(index), pa.array(ops, pa.string()))
