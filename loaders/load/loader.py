"""Load: each published batch into its raw table, exactly once (docs/architecture.md, contract 4).

For each batch (a folder with `_manifest.json`) not yet in the load log, in batch order:
verify the parts against the manifest, then in ONE transaction: stage the parts, insert the
rows into the raw table with the batch id and load time, and record the batch in the load log.
A crash anywhere before COMMIT leaves nothing; a batch already in the log is skipped.

Rows are versions: a row whose primary key already has a version with the same `_row_hash`
(the hash of its declared columns, computed by the warehouse in the stage; batches extracted
before issue 18 carry it, computed at extract with the same rendering) is not inserted again. That is what makes the
extract's lookback window and a repeated historical extract harmless: re-running extract and
load with no source change adds no row, while a row changed under an unchanged cursor is a new
version. A historical batch is a snapshot: every key the raw table holds (latest version not a
tombstone) that the snapshot lacks gets a tombstone in the same transaction. dbt's staging
models pick the latest version per key and drop tombstones (contracts 5 and 8).
The existence check reads only the raw rows in the staged batch's range of first key column
and cursor (constants read from the stage), so zone maps and sort keys skip the rest: an hourly
load costs the batch, not the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..declarations import Table
from ..manifest import ManifestError, batch_table, read_manifest
from ..schema.raw import RawSchemaError, evolve_raw
from ..warehouses import LOAD_LOG, Warehouse, literal
from .batches import LoadError, list_batches, verify_parts
from .statements import batch_statements, insert_statement, stage_bounds


@dataclass
class BatchLoadReport:
    """One published batch seen by `dwh load`: loaded now, or skipped (already in the log)."""

    table: str
    batch_id: str
    mode: str
    status: str  # loaded | skipped
    rows_in_batch: int = 0
    rows_inserted: int = 0
    seconds: float = 0.0
    raw_changes: list[str] = field(default_factory=list)  # columns added or widened in raw for it


InTransaction = Callable[["BatchLoadReport"], None]
"""Called with a batch's report inside its load transaction, before COMMIT: what it writes
commits with the batch (the run history, loaders/history.py)."""


def load_batch(
    wh: Warehouse, table: Table, folder: str, in_transaction: InTransaction | None = None
) -> BatchLoadReport:
    """Load one batch exactly once. Raises LoadError (a part missing, corrupted or refused by the
    warehouse, a column raw cannot take: nothing was loaded) or ManifestError. The batch's
    columns are the manifest's: columns raw lacks are added, narrower raw columns widened, and
    raw columns the batch lacks stay NULL. `in_transaction` runs inside the batch's
    transaction once the batch is inserted and logged."""
    started = time.perf_counter()
    try:
        manifest = read_manifest(wh.store, table, folder)
    except ManifestError as exc:
        raise LoadError(str(exc)) from None
    batch_id = manifest["batch_id"]
    if wh.execute(f"SELECT 1 FROM {wh.raw_name(LOAD_LOG)} WHERE batch_id = {literal(batch_id)}"):
        return BatchLoadReport(table.name, batch_id, manifest["mode"], "skipped", manifest["row_count"])
    # After the load-log check: a batch already loaded is skipped whatever its columns.
    try:
        extracted = batch_table(wh.store, table, folder, manifest)
    except ManifestError as exc:
        raise LoadError(str(exc)) from None
    verify_parts(wh.store, folder, manifest, checksums=wh.verifies_part_checksums)
    try:  # raw takes the batch's columns: new ones added, widened ones widened (loaders/schema/raw.py)
        raw_changes = evolve_raw(wh, table, extracted.columns)
    except RawSchemaError as exc:
        raise LoadError(f"batch {batch_id} of {table.name!r}: {exc}") from None
    table = extracted  # staged and inserted by name: raw columns the batch lacks stay NULL
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    steps = batch_statements(wh, table, manifest, folder, loaded_at)
    with wh.transaction():
        for sql in steps["begin"]:
            wh.execute(sql)
        if wh.execute(steps["check"][0]):  # another loader committed it meanwhile
            return BatchLoadReport(table.name, batch_id, manifest["mode"], "skipped", manifest["row_count"])
        wh.execute(steps["stage"][0])
        try:
            wh.fill_stage(table, manifest, folder)
        except Exception as exc:
            wh.rollback()
            detail = wh.copy_error_detail()
            raise LoadError(
                f"batch {batch_id} of {table.name!r} ({wh.store.uri(folder)}) could not be staged: "
                f"{detail or _first_line(exc)}; nothing was loaded"
            ) from None
        for sql in steps["after_stage"]:
            wh.execute(sql)
        # the existence check reads only the raw rows in the staged batch's range; then the
        # snapshot's tombstones, the load-log row, the stage's end
        wh.execute(
            insert_statement(
                wh, table, batch_id, loaded_at, dedupe=manifest.get("dedupe", True), bounds=stage_bounds(wh, table)
            )
        )
        for sql in steps["insert"][1:] + steps["log"] + steps["end"]:
            wh.execute(sql)
        inserted = wh.execute(
            f"SELECT rows_inserted FROM {wh.raw_name(LOAD_LOG)} WHERE batch_id = {literal(batch_id)}"
        )[0][0]
        report = BatchLoadReport(
            table.name,
            batch_id,
            manifest["mode"],
            "loaded",
            manifest["row_count"],
            int(inserted),
            time.perf_counter() - started,
            raw_changes,
        )
        if in_transaction:
            in_transaction(report)
    return report


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def ensure_raw_tables(wh: Warehouse, tables: list[Table]) -> None:
    """Create every raw table (and the load log) that does not exist yet; add the change
    columns of contract 8 to a raw table made before them (`Warehouse.migrate_statements`); and
    add (or widen) the declared columns an existing raw table lacks: declaring a column never
    strands a batch. Raises LoadError naming table, column and types for a declared type raw
    cannot take."""
    for table in tables:
        migrate = wh.migrate_statements(table)
        if migrate:
            with wh.transaction():
                for sql in migrate:
                    wh.execute(sql)
        for sql in wh.create_statements(table):
            wh.execute(sql)
        try:
            evolve_raw(wh, table, table.columns)
        except RawSchemaError as exc:
            raise LoadError(f"{exc} (declared in the sources YAML)") from None


def load_pending_batches(
    wh: Warehouse,
    tables: list[Table],
    progress: Callable[[BatchLoadReport], None] | None = None,
    declared: list[Table] | None = None,
    in_transaction: InTransaction | None = None,
) -> list[BatchLoadReport]:
    """Load every pending batch of the given tables; return one report per batch seen.

    Every declared raw table is created (empty) if missing, so dbt always finds its sources.
    `in_transaction` runs inside each batch's load transaction (see `load_batch`).
    """
    ensure_raw_tables(wh, declared or tables)
    reports = []
    for table in tables:
        for _, folder in list_batches(wh.store, table):
            report = load_batch(wh, table, folder, in_transaction)
            if progress:
                progress(report)
            reports.append(report)
    return reports
