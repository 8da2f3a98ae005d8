"""Extract: one run of one table writes one batch (docs/architecture.md, contracts 2 and 3).

A batch is a folder `olist/<table>/<mode>/batch=<id>/` (loaders/layout.py) holding
Parquet parts, a Redshift COPY manifest and, written last, `_manifest.json` (loaders/manifest.py).
A folder without `_manifest.json` is not a batch: the loader never sees it. Incremental
("current") runs read `cursor >= watermark - lookback AND cursor < upper`, where `upper` is the
source database's clock read once at the start of the run; the watermark advances to `upper`
only after the manifest is written.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..config import Settings
from ..declarations import OP_SNAPSHOT, OP_UPDATE, PART_CHANGE_COLUMNS, Table
from ..layout import MODES, Mode
from ..manifest import MANIFEST_VERSION, Part, logical_name, write_manifests
from ..schema import Decision, SchemaChangeError, SchemaPlan, check_source_schema
from ..sources import SourceEngine
from ..store import ObjectStore
from .diagnose import panics_silenced
from .parts import ExtractError, PartWriter, with_change_columns
from .queries import KeyRange
from .readers import plan_ranges, read_chunks, read_rows
from .resume import Checkpoint, has_checkpoint, read_checkpoint, storable, tidy_folder, write_checkpoint
from .values import check_declared
from .watermark import read_watermark, write_watermark

log = logging.getLogger("loaders.extract")


@dataclass
class BatchReport:
    """What one extract of one table wrote (batch_id None: no changed rows, no batch)."""

    table: str
    mode: str
    batch_id: str | None
    rows: int = 0
    bytes: int = 0
    parts: list[Part] = field(default_factory=list)
    lower: datetime | None = None
    upper: datetime | None = None
    seconds: float = 0.0
    manifest: str | None = None
    resumed: bool = False  # a historical extract that went on from a killed run's checkpoint
    schema: tuple[Decision, ...] = ()  # the source's schema changes and what was done (loaders/schema/)


def new_batch_id() -> str:
    """Sortable by time, unique across concurrent runs (layout.BATCH_ID)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def extract_table(
    settings: Settings,
    engine: SourceEngine,
    store: ObjectStore,
    table: Table,
    mode: Mode,
    progress: Callable[[str, int], None] | None = None,
) -> BatchReport:
    """Extract one table as one batch; return what was written.

    The source table's columns are first compared with the declaration (loaders/schema/):
    under DWH_SCHEMA_CHANGES=evolve new columns are extracted after the declared ones and
    widened columns with their source type; the manifest lists the columns as extracted.

    Every value of a widened column must still fit its declared type (staging casts to it):
    one that does not stops the table (values.check_declared).

    Raises SchemaChangeError (a change the policy stops: nothing read, nothing written; or a
    value of a widened column that does not fit its declared type: nothing published),
    ExtractError (unknown mode, no watermark for a current extract, a value that does not fit
    its declared type) and SourceError (the source refused the read); in every case the
    watermark stays where it was, and the unfinished batch folder is removed, except the
    parts of a historical extract that a checkpoint records: the next historical (or auto)
    extract resumes from them (loaders/extract/resume.py).
    """
    if mode not in MODES:
        raise ExtractError(f"unknown mode {mode!r}: use {' or '.join(MODES)}")
    started = time.perf_counter()
    plan = check_source_schema(engine, table, settings.schema_changes, cursor_optional=settings.capture == "binlog")
    stop = plan.stop_message()
    if stop:
        raise SchemaChangeError(stop, plan)
    table = plan.table  # declared columns (widened where the source widened them), then new ones
    decisions = plan.decisions
    binlog_snapshot = settings.capture == "binlog" and mode == "historical"
    if mode == "historical" and not binlog_snapshot:
        return _historical(settings, engine, store, table, progress, started, plan)
    upper = engine.now()
    lower = None
    if mode == "current":
        watermark = read_watermark(store, table)
        if watermark is None:
            raise ExtractError(f"table {table.name!r} has no watermark in {store.url}: run a historical extract first")
        if watermark > upper:  # a restored or edited state: every window would be empty
            raise ExtractError(
                f"table {table.name!r}: the watermark {watermark.isoformat()} "
                f"({store.uri(layout.state_path(table.name))}) is later than the source's clock "
                f"{upper.isoformat()}; nothing was extracted. Fix the state file, or re-extract the table "
                f"(dwh extract --mode historical --table {table.name})"
            )
        lower = watermark - timedelta(seconds=settings.lookback_seconds)
    batch_id = new_batch_id()
    folder = layout.batch_dir(table.name, mode, batch_id)
    writer = PartWriter(store, folder, table, settings)
    rows = 0
    max_cursor = None
    snapshot: list[Any] = []  # binlog capture: the position of the historical extract's snapshot
    if binlog_snapshot:  # one consistent snapshot on one connection (not resumable)
        from .binlog import require_mysql, snapshot_rows

        require_mysql(engine)
        source = snapshot_rows(engine, table, settings, snapshot)
    else:
        source = read_rows(engine, table, lower, upper, settings)
    try:
        with panics_silenced():  # a driver's panic output becomes a debug log record
            for batch in source:
                check_declared(batch, plan)
                max_cursor = _max_cursor(table, batch, max_cursor)
                op = OP_SNAPSHOT if mode == "historical" else OP_UPDATE
                writer.write(with_change_columns(batch, table, op, rows))
                rows += batch.num_rows
                if progress:
                    progress(table.name, rows)
        parts = writer.finish()
    except BaseException:
        writer.abort()
        _discard_batch(store, folder)
        raise
    return _publish(
        settings,
        engine,
        store,
        table,
        mode,
        batch_id,
        folder,
        parts,
        lower,
        upper,
        max_cursor,
        started,
        decisions,
        snapshot[0] if snapshot else None,
    )


def _max_cursor(table: Table, batch: pa.RecordBatch, current: datetime | None) -> datetime | None:
    batch_max = pc.max(batch.column(table.cursor)).as_py()
    if batch_max is not None and (current is None or batch_max > current):
        return batch_max
    return current


def _historical(
    settings: Settings,
    engine: SourceEngine,
    store: ObjectStore,
    table: Table,
    progress: Callable[[str, int], None] | None,
    started: float,
    plan: SchemaPlan,
) -> BatchReport:
    """Every row before the run's upper bound, key ranges in parallel, checkpointed at each part
    (loaders/extract/resume.py): resumed from the table's checkpoint when there is one."""
    cp = read_checkpoint(store, table)
    if cp is not None and store.exists(layout.batch_manifest(cp.folder)):
        # killed between publishing the batch and the watermark: only the watermark is missing
        manifest = store.read_json(layout.batch_manifest(cp.folder))
        write_watermark(store, table, cp.upper, cp.batch_id)
        report = BatchReport(table.name, "historical", cp.batch_id, manifest["row_count"], upper=cp.upper)
        report.manifest = store.uri(layout.batch_manifest(cp.folder))
        return report
    if cp is not None:
        tidy_folder(store, cp)
        log.info(
            "table %s: resuming the historical extract of batch %s after %d rows in %d parts",
            table.name,
            cp.batch_id,
            cp.rows,
            len(cp.parts),
        )
    else:
        batch_id = new_batch_id()
        cp = Checkpoint(
            batch_id,
            layout.batch_dir(table.name, "historical", batch_id),
            engine.now(),
            plan_ranges(engine, table, settings),
            [],
            None,
            list(table.column_names),
        )
    resumed = bool(cp.parts)
    # a new historical batch is sized for the cluster's slices when DWH_REDSHIFT_SLICES is set;
    # a resumed one goes on in parts of DWH_PART_ROWS
    expected = engine.row_count(table) if settings.redshift_slices and not resumed else None
    writer = PartWriter(store, cp.folder, table, settings, expected, parts=cp.parts)
    # positions[i]: where range i stands counting every row handed to the writer; when a part
    # closes, every row handed over so far is in finished parts: that is a checkpoint
    positions = [KeyRange(r.start, r.end, r.after, r.done) for r in cp.ranges]
    checkpointing = all(storable([r.start, r.end]) for r in cp.ranges)
    rows, max_cursor = cp.rows, cp.max_cursor
    current: dict = {}  # the chunk being written and the writer's row count before it

    def part_closed(written: int) -> None:
        """A part was closed after `written` rows in all: record where every range stands."""
        chunk, start = current["chunk"], current["start"]
        last = written - start - 1  # the chunk's last row in the closed part
        durable = [KeyRange(p.start, p.end, p.after, p.done) for p in positions]
        durable[chunk.index].after = chunk.key_at(last)
        top = _max_cursor(table, chunk.batch.slice(0, last + 1), current["max_before"])
        if checkpointing and storable(durable[chunk.index].after):
            cp.parts, cp.max_cursor, cp.ranges = list(writer.parts), top, durable
            write_checkpoint(store, table, cp)

    writer.on_close = part_closed
    try:
        with panics_silenced():  # a driver's panic output becomes a debug log record
            for chunk in read_chunks(engine, table, cp.upper, settings, cp.ranges):
                position = positions[chunk.index]
                if chunk.batch is None:
                    position.done = True
                    continue
                check_declared(chunk.batch, plan)
                current.update(chunk=chunk, start=writer.written, max_before=max_cursor)
                writer.write(with_change_columns(chunk.batch, table, OP_SNAPSHOT, rows))
                max_cursor = _max_cursor(table, chunk.batch, max_cursor)
                rows += chunk.batch.num_rows
                position.after = chunk.key_at(chunk.batch.num_rows - 1)
                if progress:
                    progress(table.name, rows)
            writer.on_close = None  # the last part is published with the manifest
            parts = writer.finish()
    except BaseException:
        writer.abort()
        if not checkpointing or not has_checkpoint(store, table):
            _discard_batch(store, cp.folder)
        raise
    report = _publish(
        settings,
        engine,
        store,
        table,
        "historical",
        cp.batch_id,
        cp.folder,
        parts,
        None,
        cp.upper,
        max_cursor,
        started,
        plan.decisions,
    )
    report.resumed = resumed
    return report


def _publish(
    settings: Settings,
    engine: SourceEngine,
    store: ObjectStore,
    table: Table,
    mode: Mode,
    batch_id: str,
    folder: str,
    parts: list[Part],
    lower: datetime | None,
    upper: datetime,
    max_cursor: datetime | None,
    started: float,
    decisions: tuple[Decision, ...] = (),
    snapshot: Any = None,
) -> BatchReport:
    """Write the manifests (publishing the batch, if it has rows), then the watermark (and, for a
    binlog capture's snapshot, its binary-log position: loaders/extract/binlog.py)."""
    rows = sum(p.rows for p in parts)
    report = BatchReport(table.name, mode, None, lower=lower, upper=upper, schema=decisions)
    if rows:
        manifest = {
            "version": MANIFEST_VERSION,
            "table": table.name,
            "batch_id": batch_id,
            "mode": mode,
            "created_at": datetime.now(UTC).isoformat(),
            "source_dialect": engine.name,
            "format": "parquet",
            "compression": settings.parquet_compression,
            "cursor": {
                "column": table.cursor,
                "lower": lower.isoformat() if lower else None,
                "upper": upper.isoformat(),
                "max": max_cursor.isoformat() if max_cursor else None,
            },
            **({"capture": "binlog", "binlog": {"snapshot": snapshot.to_json()}} if snapshot else {}),
            "primary_key": list(table.primary_key),
            "columns": [
                {"name": c.name, "type": logical_name(c.type), "arrow": str(c.type.arrow())} for c in table.columns
            ],
            "change_columns": list(PART_CHANGE_COLUMNS),
            "snapshot": mode == "historical",
            "row_count": rows,
            "parts": [{**asdict(p), "path": p.path.rsplit("/", 1)[1]} for p in parts],
        }
        write_manifests(store, folder, manifest, parts)
        report.batch_id, report.rows, report.parts = batch_id, rows, parts
        report.bytes = sum(p.bytes for p in parts)
        report.manifest = store.uri(layout.batch_manifest(folder))
    else:
        _discard_batch(store, folder)  # a resumed extract may have left an empty folder
    write_watermark(store, table, upper, report.batch_id, snapshot.to_json() if snapshot else None)
    report.seconds = time.perf_counter() - started
    log.info("extracted %s (%s): %d rows in %d parts, %.1fs", table.name, mode, rows, len(report.parts), report.seconds)
    return report


def _discard_batch(store: ObjectStore, folder: str) -> None:
    try:
        store.delete(folder)
    except Exception:  # the batch has no manifest: leftovers are invisible anyway
        log.warning("could not remove the unfinished batch folder %s", store.uri(folder))
