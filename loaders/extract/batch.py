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

import pyarrow.compute as pc

from .. import layout
from ..config import Settings
from ..declarations import CHANGE_COLUMNS, OP_SNAPSHOT, OP_UPDATE, Table
from ..layout import MODES, Mode
from ..manifest import MANIFEST_VERSION, Part, logical_name, write_manifests
from ..schema import Decision, SchemaChangeError, check_source_schema
from ..sources import SourceEngine
from ..store import ObjectStore
from .diagnose import panics_silenced
from .parts import ExtractError, PartWriter, with_change_columns
from .readers import read_rows
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

    Raises SchemaChangeError (a change the policy stops: nothing read, nothing written),
    ExtractError (unknown mode, no watermark for a current extract, a value that does not fit
    its declared type) and SourceError (the source refused the read); in every case the
    unfinished batch folder is removed and the watermark stays where it was.
    """
    if mode not in MODES:
        raise ExtractError(f"unknown mode {mode!r}: use {' or '.join(MODES)}")
    started = time.perf_counter()
    plan = check_source_schema(engine, table, settings.schema_changes, cursor_optional=settings.capture == "binlog")
    stop = plan.stop_message()
    if stop:
        raise SchemaChangeError(stop, plan)
    table = plan.table  # declared columns (widened where the source widened them), then new ones
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
    # a historical batch is sized for the cluster's slices when DWH_REDSHIFT_SLICES is set
    expected = engine.row_count(table) if mode == "historical" and settings.redshift_slices else None
    writer = PartWriter(store, folder, table, settings, expected)
    rows = 0
    max_cursor = None
    snapshot: list[Any] = []  # binlog capture: the position of the historical extract's snapshot
    if settings.capture == "binlog" and mode == "historical":
        from .binlog import require_mysql, snapshot_rows

        require_mysql(engine)
        source = snapshot_rows(engine, table, settings, snapshot)
    else:
        source = read_rows(engine, table, lower, upper, settings)
    try:
        with panics_silenced():  # a driver's panic output becomes a debug log record
            for batch in source:
                batch_max = pc.max(batch.column(table.cursor)).as_py()
                if batch_max is not None and (max_cursor is None or batch_max > max_cursor):
                    max_cursor = batch_max
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
    report = BatchReport(table.name, mode, None, lower=lower, upper=upper, schema=plan.decisions)
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
            **({"capture": "binlog", "binlog": {"snapshot": snapshot[0].to_json()}} if snapshot else {}),
            "primary_key": list(table.primary_key),
            "columns": [
                {"name": c.name, "type": logical_name(c.type), "arrow": str(c.type.arrow())} for c in table.columns
            ],
            "change_columns": list(CHANGE_COLUMNS),
            "snapshot": mode == "historical",
            "row_count": rows,
            "parts": [{**asdict(p), "path": p.path.rsplit("/", 1)[1]} for p in parts],
        }
        write_manifests(store, folder, manifest, parts)
        report.batch_id, report.rows, report.parts = batch_id, rows, parts
        report.bytes = sum(p.bytes for p in parts)
        report.manifest = store.uri(layout.batch_manifest(folder))
    write_watermark(store, table, upper, report.batch_id, snapshot[0].to_json() if snapshot else None)
    report.seconds = time.perf_counter() - started
    log.info("extracted %s (%s): %d rows in %d parts, %.1fs", table.name, mode, rows, len(report.parts), report.seconds)
    return report


def _discard_batch(store: ObjectStore, folder: str) -> None:
    try:
        store.delete(folder)
    except Exception:  # the batch has no manifest: leftovers are invisible anyway
        log.warning("could not remove the unfinished batch folder %s", store.uri(folder))
