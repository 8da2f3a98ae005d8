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

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from ..config import Settings
from ..declarations import Table
from ..extract.parallel import row_bytes, run_within_budget
from ..manifest import ManifestError, batch_table, read_manifest
from ..schema.raw import RawSchemaError, evolve_raw
from ..warehouses import LOAD_LOG, Warehouse, literal
from .batches import LoadError, list_batches, verify_parts
from .statements import batch_statements, insert_statement, stage_bounds

R = TypeVar("R")


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


def load_table(
    wh: Warehouse,
    table: Table,
    progress: Callable[[BatchLoadReport], None] | None = None,
    in_transaction: InTransaction | None = None,
) -> list[BatchLoadReport]:
    """Every pending batch of one table, oldest first, each in its own transaction on `wh`
    (`load_batch`); the table's raw table is created or evolved first. Stops at the first batch
    that fails (its LoadError propagates): the later batches of the table wait for it."""
    ensure_raw_tables(wh, [table])
    reports = []
    for _, folder in list_batches(wh.store, table):
        report = load_batch(wh, table, folder, in_transaction)
        if progress:
            progress(report)
        reports.append(report)
    return reports


LOAD_BASE_MB = 32.0
"""A running table load's fixed cost in this process: its connection, pyarrow's reader."""


def load_memory_mb(table: Table, settings: Settings) -> float:
    """Peak memory of one table's load in this process, MB: the Parquet row group being decoded
    (DWH_BATCH_ROWS rows: the extract writes row groups of that size), its CSV text for COPY
    and the page it was read from (x 3). The rows stream (loaders/warehouses/arrow_copy.py), so
    the estimate does not grow with the batch."""
    return LOAD_BASE_MB + 3 * settings.batch_rows * row_bytes(table) / 1e6


def pending_bytes(wh: Warehouse, tables: list[Table]) -> dict[str, int]:
    """The bytes of each table's batches not in the load log yet (their manifests' part sizes;
    a manifest that cannot be read counts 0, its load reports why): what a parallel load starts
    with, largest first. One load-log query and one manifest read per pending batch."""
    logged = {r[0] for r in wh.execute(f"SELECT batch_id FROM {wh.raw_name(LOAD_LOG)}")}
    sizes = {}
    for table in tables:
        total = 0
        for batch_id, folder in list_batches(wh.store, table):
            if batch_id in logged:
                continue
            try:
                total += sum(int(p["bytes"]) for p in read_manifest(wh.store, table, folder)["parts"])
            except Exception:  # the table's own load names what is wrong with it
                continue
        sizes[table.name] = total
    return sizes


def load_tables(
    wh: Warehouse, tables: list[Table], work: Callable[[Warehouse, Table], R], at_once: int | None = None
) -> tuple[list[R], int]:
    """Run `work(connection, table)` for every table; return the results in table order and the
    most tables that ran at once.

    Up to `at_once` tables run at the same time (default: the engine's
    `Warehouse.parallel_loads`), each on a warehouse connection of its own (`Warehouse.sibling`)
    and only while their `load_memory_mb` estimates fit DWH_MAX_MEMORY_MB (a table above it
    runs alone), the same rule as `dwh extract` (loaders/extract/parallel.py). They start
    largest first (`pending_bytes`: a historical geolocation is most of a first load), so the
    largest does not start last. One table's batches stay on one connection, in batch order,
    one transaction each, so exactly-once and the per-table order are what they are one table
    at a time. With one at a time the tables run in the given order on `wh` itself. The first
    `work` to raise stops new starts; the tables running end, then its exception is raised
    (`work` that must not stop the others catches its own). An interrupt (Ctrl-C) cancels the
    statements running on the tables' connections (`Warehouse.cancel`): their batches roll
    back, no table starts another.
    """
    lanes = wh.parallel_loads if at_once is None else at_once
    if lanes <= 1 or len(tables) < 2:  # in this thread, as before tables could run at once
        return [work(wh, table) for table in tables], min(1, len(tables))
    sizes = pending_bytes(wh, tables)
    ordered = sorted(tables, key=lambda t: -sizes[t.name])  # stable: equal sizes keep the given order
    open_now: set[Warehouse] = set()
    guard = threading.Lock()

    def one(table: Table) -> R:
        with wh.sibling() as own:
            with guard:
                open_now.add(own)
            try:
                return work(own, table)
            finally:
                with guard:
                    open_now.discard(own)

    def cancel() -> None:  # Ctrl-C: the statements running fail, their transactions roll back
        with guard:
            for own in open_now:
                own.cancel()

    cost = lambda t: load_memory_mb(t, wh.settings)
    budget = float(wh.settings.max_memory_mb)
    done, most = run_within_budget(ordered, cost, budget, one, at_once=lanes, on_interrupt=cancel)
    by_name = {t.name: result for t, result in zip(ordered, done, strict=True)}
    return [by_name[t.name] for t in tables], most


def load_pending_batches(
    wh: Warehouse,
    tables: list[Table],
    progress: Callable[[BatchLoadReport], None] | None = None,
    declared: list[Table] | None = None,
    in_transaction: InTransaction | None = None,
    at_once: int | None = None,
) -> list[BatchLoadReport]:
    """Load every pending batch of the given tables; return one report per batch seen, in
    table order. Tables run as `load_tables` says (several at once on engines with
    `parallel_loads`): `progress` and `in_transaction` are then called from the table's thread.

    Every declared raw table is created (empty) if missing, so dbt always finds its sources.
    `in_transaction` runs inside each batch's load transaction (see `load_batch`). The first
    table that fails stops new tables from starting; its error is raised once those running end.
    """
    ensure_raw_tables(wh, declared or tables)
    done, _ = load_tables(wh, tables, lambda own, table: load_table(own, table, progress, in_transaction), at_once)
    return [report for reports in done for report in reports]
