"""The stages wired together: what each `dwh` command and each Glue job runs.

Each function here is a thin sequence over the stage packages; the CLI is a thinner layer still.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from . import layout
from .build import DbtReport, run_dbt
from .config import Settings
from .console import NoTask
from .declarations import DeclarationError, Table, select_tables
from .errors import USER_ERRORS
from .extract import BatchReport, ExtractError, extract_table, read_watermark
from .extract.binlog import Position
from .funnel import CatalogError, FunnelError
from .history import StoreHistory, WarehouseHistory, ensure_history, ingest_records, recording, write_unit
from .layout import MODES, Mode
from .load import BatchLoadReport, ensure_raw_tables, list_batches, load_pending_batches
from .report import Reporter, mb
from .runs import RunFailed, UnitOutcome, first_line
from .schema import Decision, SchemaChangeError, SchemaPlan, check_source_schema
from .sources import SourceEngine, open_source
from .sources.bootstrap import BulkLoadReport, load_folder
from .store import ObjectStore, StoreError
from .warehouses import Warehouse, open_warehouse

log = logging.getLogger("loaders.pipeline")

FUNNEL_FILE_ERRORS: tuple[type[Exception], ...] = (FunnelError, CatalogError, StoreError, DeclarationError)
"""What one funnel file's conversion may fail with and still cost only that file."""

ExtractMode = Literal["auto"] | Mode
"""`auto`: historical for a table without a watermark yet, else current."""
EXTRACT_MODES: tuple[str, ...] = ("auto", *MODES)


def load_source(
    settings: Settings, csv_dir: Path, rep: Reporter, replace: bool = False, tables: list[str] | None = None
) -> list[BulkLoadReport]:
    """`dwh source load`: create the schema and bulk-load the CSV files into the source."""
    selected = select_tables(settings.project_dir, tables)
    store = ObjectStore(settings.store_url, settings)
    with (
        open_source(settings.source_url, create=True) as engine,
        recording(rep.run, StoreHistory(store)),
        rep.run.unit("source_load", str(csv_dir)) as unit,
    ):
        rep.stage(f"load the source database ({engine.name}) from {csv_dir}")
        sizes = {t.name: (csv_dir / t.csv_file).stat().st_size for t in selected if (csv_dir / t.csv_file).is_file()}
        with rep.task("source load", sum(sizes.values()), "bytes") as task:

            def loaded(report: BulkLoadReport) -> None:
                task.advance(sizes.get(report.table, 0))

            reports = load_folder(engine, selected, csv_dir, replace=replace, progress=loaded)
        for report in reports:  # all or nothing: stored once every table is
            rep.bulk_load(report)
        unit.rows = sum(r.rows_stored for r in reports)
        unit.bytes = sum(sizes.values())
        return reports


def extract(
    settings: Settings, rep: Reporter, mode: ExtractMode = "auto", tables: list[str] | None = None
) -> list[BatchReport]:
    """`dwh extract`: one batch per table into the object store, as many tables at once as fit
    DWH_MAX_MEMORY_MB (loaders/extract/parallel.py); the reports come back in table order.

    A table whose extract fails costs only itself (contract 13): its batch folder is removed
    (a historical extract keeps what its checkpoint records, to resume), its watermark stays,
    the failure is one line and a `failed` unit, and the other tables go on. Raises RunFailed
    naming every failed table after the last one.

    With DWH_CAPTURE=binlog, `auto` and `current` read the row events of every table that has a
    stored binary-log position, in one pass over the log up to its end at the run's start, each
    table from its own position into its own batch (loaders/extract/capture.py); a
    table without a position, or whose position the server purged, gets a historical extract
    (a consistent snapshot that records its position) instead, announced in one line; a schema
    change stops only its table.
    """
    from .extract.diagnose import panics_silenced
    from .extract.parallel import memory_estimate_mb, run_within_budget

    selected = select_tables(settings.project_dir, tables)
    store = ObjectStore(settings.store_url, settings)
    since = len(rep.run.outcomes)
    with open_source(settings.source_url) as engine, recording(rep.run, StoreHistory(store)):
        rep.stage(
            f"extract ({mode}{', binlog capture' if settings.capture == 'binlog' else ''}) "
            f"from {engine.name} -> {store.url}"
        )
        end = upper = None
        captured: dict[str, tuple[datetime, BatchReport | Exception]] = {}
        if settings.capture == "binlog" and mode != "historical":
            from .extract.binlog import current_position, require_mysql

            require_mysql(engine)
            upper = engine.now()
            end = current_position(engine)  # fixed for the whole run: the changes up to here
            captured = _capture_all(settings, engine, store, selected, end, upper)
        cost = lambda t: memory_estimate_mb(t, _mode_guess(store, t, mode), settings)
        # SQLite sources one table at a time (SQLiteSource.parallel_tables): a budget of 0 runs one
        budget = settings.max_memory_mb if engine.parallel_tables else 0
        alone = len(selected) < 2 or sum(cost(t) for t in selected[:2]) > budget
        order = {t.name: i for i, t in enumerate(selected)}
        outcomes: dict[int, tuple[Table, BatchReport | Exception]] = {}
        shown = [0]
        lock = threading.Lock()

        def work(table: Table) -> BatchReport | None:
            result = _extract_one(
                settings, rep, store, table, mode, progress_bar=alone, end=end, upper=upper, captured=captured
            )
            with lock:  # each table's line in table order, as soon as the tables before it are done
                outcomes[order[table.name]] = (table, result)
                while shown[0] in outcomes:
                    done_table, done = outcomes[shown[0]]
                    if isinstance(done, Exception):  # a schema stop too: its one line (contract 12)
                        unit_failed(rep, done_table.name, done)
                    else:
                        _schema_changes(rep, done.schema)
                        rep.extract(done)
                    shown[0] += 1
            return None if isinstance(result, Exception) else result

        # one capture of native panic output for every table's thread (loaders/extract/diagnose.py)
        with panics_silenced():
            done, _ = run_within_budget(selected, cost, budget, work)
    reports = [r for r in done if r is not None]
    failed = [o for o in rep.run.outcomes[since:] if o.status in ("failed", "set_aside")]
    if failed:  # named in table order, whichever thread started first
        raise RunFailed(sorted(failed, key=lambda o: order.get(o.unit, len(order))), reports=reports)
    return reports


def _mode_guess(store: ObjectStore, table: Table, mode: ExtractMode) -> Mode:
    """The mode a table's extract will run in, for its memory estimate (historical, the larger,
    when its state cannot be read: the extract itself then reports why)."""
    try:
        return auto_mode(store, table) if mode == "auto" else mode
    except Exception:
        return "historical"


def _extract_one(
    settings: Settings,
    rep: Reporter,
    store: ObjectStore,
    table: Table,
    mode: ExtractMode,
    progress_bar: bool,
    end: Position | None = None,
    upper: datetime | None = None,
    captured: dict[str, tuple[datetime, BatchReport | Exception]] | None = None,
) -> BatchReport | Exception:
    """One table's extract as one unit of the run, on its own source connection: its report, or
    the exception that failed it (the unit is recorded `failed`). Progress bars only when the
    tables run one at a time (a terminal shows one at once). With `end` and `upper` (binlog
    capture, fixed at the run's start) the table's outcome in the run's pass over the log
    (`captured`: when it started, then its report or error) is the unit's, or a historical
    extract where the table has no position or lost it."""
    try:
        with rep.run.unit("extract", table.name) as unit, open_source(settings.source_url) as engine:
            if end is not None and upper is not None:
                report = _capture(settings, rep, engine, store, table, mode, unit, (captured or {}).get(table.name))
                unit.rows, unit.bytes = report.rows, report.bytes
                unit.batch_ids = [report.batch_id] if report.batch_id else []
                return report
            table_mode: Mode = auto_mode(store, table) if mode == "auto" else mode
            show = progress_bar and rep.shows_progress
            total = engine.estimate_rows(table) if show and table_mode == "historical" else None
            with rep.task(f"extract {table.name}", total) if show else nullcontext(NoTask()) as task:
                report = extract_table(
                    settings, engine, store, table, table_mode, progress=lambda _t, n: task.update(n)
                )
            unit.rows, unit.bytes = report.rows, report.bytes
            unit.batch_ids = [report.batch_id] if report.batch_id else []
    except Exception as exc:
        return exc
    return report


def auto_mode(store: ObjectStore, table: Table) -> Mode:
    """`historical` for a table with no watermark yet or with a historical extract to resume
    (loaders/extract/resume.py), else `current`."""
    from .extract.resume import has_checkpoint

    return "current" if read_watermark(store, table) and not has_checkpoint(store, table) else "historical"


def _schema_changes(rep: Reporter, decisions: tuple[Decision, ...]) -> None:
    """One line per schema change of an extracted table in the output, and one `schema` unit per
    change in the run history (its message is the line). A table that a change stops is only its
    failed `extract` unit, whose one line is the stopping change's (policy.SchemaPlan.stop_message)."""
    for d in decisions:
        rep.echo(f"  schema: {d.line}")
        with rep.run.unit("schema", f"{d.change.table}.{d.change.column}") as unit:
            unit.error = d.line
            unit.status = "failed" if d.action == "stop" else "succeeded"


def schema_diff(settings: Settings, rep: Reporter, tables: list[str] | None = None) -> list[SchemaPlan]:
    """`dwh schema diff`: each table's source schema against its declaration, what the policy
    does with each change, and the lines that declare and expose new or widened columns."""
    from .schema import check_source_schema
    from .schema.advice import diff_lines
    from .schema.policy import SOURCES_YAML

    selected = select_tables(settings.project_dir, tables)
    plans = []
    with open_source(settings.source_url) as engine:
        rep.stage(f"schema diff: {engine.name} source vs {SOURCES_YAML} (DWH_SCHEMA_CHANGES={settings.schema_changes})")
        for table in selected:
            plan = check_source_schema(engine, table, settings.schema_changes)
            for line in diff_lines(plan, settings.project_dir):
                rep.echo(line)
            plans.append(plan)
    return plans


def _capture_all(
    settings: Settings, engine: SourceEngine, store: ObjectStore, tables: list[Table], end: Position, upper: datetime
) -> dict[str, tuple[datetime, BatchReport | Exception]]:
    """The binlog capture of every table that has a stored position, in one pass over the log
    (loaders/extract/capture.py): per table, when the pass started and its report or error. A
    table whose state cannot be read gets that error."""
    from .extract.capture import capture_tables, stored_position

    started = datetime.now(UTC)
    outcomes: dict[str, tuple[datetime, BatchReport | Exception]] = {}
    positioned = []
    for table in tables:
        try:
            if stored_position(store, table) is not None:
                positioned.append(table)
        except Exception as exc:
            outcomes[table.name] = (started, exc)
    if positioned:
        for name, result in capture_tables(settings, engine, store, positioned, end, upper).items():
            outcomes[name] = (started, result)
    return outcomes


def _capture(
    settings: Settings,
    rep: Reporter,
    engine: SourceEngine,
    store: ObjectStore,
    table: Table,
    mode: ExtractMode,
    unit: UnitOutcome,
    captured: tuple[datetime, BatchReport | Exception] | None,
) -> BatchReport:
    """One table's binlog capture unit: its outcome in the run's pass over the log (the unit
    starts when the pass did); a historical extract when it has no position (mode `auto`) or its
    position was purged from the server."""
    from .extract.binlog import PositionLostError

    if captured is None:
        if mode == "current":
            raise ExtractError(
                f"table {table.name!r} has no binary-log position in {store.url}: run a historical extract first"
            )
        return extract_table(settings, engine, store, table, "historical")
    unit.started_at, result = captured
    if isinstance(result, PositionLostError):
        rep.echo(f"  {result}: taking a historical extract of {table.name} instead")
        return extract_table(settings, engine, store, table, "historical")
    if isinstance(result, Exception):
        raise result
    return result


def load(settings: Settings, rep: Reporter, tables: list[str] | None = None) -> list[BatchLoadReport]:
    """`dwh load`: every published batch not yet loaded, exactly once; then publish the funnel lake.

    A batch the warehouse refuses (or whose parts or manifest do not check out) is set aside
    (contract 13): nothing of it is loaded, the run history records it as `set_aside` with the
    reason, the later batches of its table wait (batches load in order), the other tables go
    on, and the next run tries it again (`dwh batches` lists them). Raises RunFailed naming
    every set-aside batch after the last table.
    """
    selected: list[Table] = select_tables(settings.project_dir, tables)
    store = ObjectStore(settings.store_url, settings)
    since = len(rep.run.outcomes)
    with open_warehouse(settings, store) as wh, recording(rep.run, WarehouseHistory(wh)):
        rep.stage(f"load new batches from {store.url} into {settings.warehouse} ({settings.raw_schema}.*)")
        ensure_raw_tables(wh, select_tables(settings.project_dir, None))
        ensure_history(wh)
        ingest_records(wh)  # what extract and funnel runs recorded in the store
        reports = []
        for table in selected:
            try:
                with rep.run.unit("load", table.name) as unit:
                    try:
                        table_reports = load_pending_batches(
                            wh,
                            [table],
                            progress=partial(_count_batch, rep, unit),
                            declared=[],
                            in_transaction=partial(_record_batch, wh, unit),
                        )
                    except Exception:
                        unloaded = _first_unloaded(wh, table)  # the run history names the batch
                        unit.batch_ids += unloaded
                        if unloaded:
                            unit.status = "set_aside"  # retried by the next run (dwh batches)
                        raise
                    loaded_now = [r for r in table_reports if r.status == "loaded"]
                    unit.status = "succeeded" if loaded_now else "skipped"
            except Exception as exc:
                unit_failed(rep, table.name, exc)
                continue
            reports += table_reports
        skipped = sum(r.status == "skipped" for r in reports)
        loaded = len(reports) - skipped
        rep.echo(f"  {loaded} new batch(es) loaded; {skipped} already in the load log")
        rep.echo(f"  funnel: {wh.publish_funnel()}")
    rep.run.check(since, reports)
    return reports


def unit_failed(rep: Reporter, name: str, exc: Exception) -> None:
    """After a unit failed and the run goes on: one line naming the unit and the error. The
    traceback goes to the debug log (`--debug` shows it), or to the error log for an exception
    that is not a user error (a bug)."""
    failed = rep.run.outcomes[-1] if rep.run.outcomes else None
    verb = "set aside" if failed is not None and failed.status == "set_aside" else "FAILED"
    rep.echo(f"  {name:<34} {verb}: {first_line(exc)}")
    if isinstance(exc, USER_ERRORS):
        log.debug("%s: %s", name, exc, exc_info=exc)
    else:
        log.error("%s: unexpected error", name, exc_info=exc)


def _with_batch(unit: UnitOutcome, r: BatchLoadReport) -> UnitOutcome:
    return replace(unit, rows=unit.rows + r.rows_inserted, batch_ids=[*unit.batch_ids, r.batch_id])


def _record_batch(wh: Warehouse, unit: UnitOutcome, r: BatchLoadReport) -> None:
    """Inside the batch's load transaction: the unit's line in the run history commits with it."""
    write_unit(wh, _with_batch(unit, r))


def _first_unloaded(wh: Warehouse, table: Table) -> list[str]:
    """The oldest published batch of the table not in the load log: the one a failed load of the
    table stopped at (batches load in order)."""
    from .warehouses import LOAD_LOG, literal

    try:
        logged = {
            r[0]
            for r in wh.execute(
                f"SELECT batch_id FROM {wh.raw_name(LOAD_LOG)} WHERE table_name = {literal(table.name)}"
            )
        }
        return [b for b, _ in list_batches(wh.store, table) if b not in logged][:1]
    except Exception:  # the warehouse itself failed: nothing more to say
        return []


def _count_batch(rep: Reporter, unit: UnitOutcome, r: BatchLoadReport) -> None:
    """After the batch's commit: the unit counts it, the report prints it."""
    if r.status == "loaded":
        loaded = _with_batch(unit, r)
        unit.rows, unit.batch_ids = loaded.rows, loaded.batch_ids
    rep.load(r)


def build(
    settings: Settings,
    rep: Reporter,
    extra: list[str] | None = None,
    check_freshness: bool = True,
    scope: str | None = None,
) -> DbtReport:
    """dbt source freshness (a stale raw table stops here), then dbt build.

    By default only what is downstream of data loaded since the last successful build runs
    (loaders/build/scope.py); `scope="all"`, DWH_BUILD_SCOPE=all, --full-refresh or an explicit
    selection build the whole project or that selection.
    """
    from .build.scope import FULL_TESTS, is_partial, now, plan, record_build, with_vars

    extra = list(extra or [])
    started = now()
    store = ObjectStore(settings.store_url, settings)
    with open_warehouse(settings, store) as wh:
        ensure_history(wh)
        ingest_records(wh)  # what extract and funnel runs recorded in the store
        selection = plan(wh, settings, extra, scope or settings.build_scope)
        preparations = wh.build_preparations()
    changed = [sel.split(".", 1)[1].rstrip("+") for sel in selection or []]
    shown = (
        "the whole project"
        if selection is None
        else f"what is downstream of new data in {', '.join(changed)}"
        if changed
        else "nothing new"
    )
    rep.stage(f"dbt build on {settings.warehouse}: {shown}")
    # dbt holds the warehouse while it runs (the DuckDB file too): the history opens it per write
    history = lambda: recording(rep.run, WarehouseHistory(connect=lambda: open_warehouse(settings, store)))
    if check_freshness:  # also when nothing is new: a stuck pipeline must not go unnoticed
        with history(), rep.run.unit("build", "dbt source freshness") as unit:
            freshness = run_dbt(settings, ["source", "freshness"], quiet=True)
            unit.rows = len(freshness.results)
        rep.dbt(freshness)
    if selection == []:
        rep.echo("  no batch loaded and no funnel file converted since the last build: nothing to build")
        return DbtReport("build", True)
    for args in preparations:
        rep.dbt(run_dbt(settings, args, quiet=True))
    selecting = ["--select", " ".join(selection)] if selection else []
    # a partial build tests the rows of this run only; a whole one every row (changed_rows.sql)
    testing = extra if selection else with_vars(extra, FULL_TESTS)
    with history(), rep.run.unit("build", "dbt build") as unit:
        report = run_dbt(settings, ["build", *testing, *selecting], quiet=True)
        unit.rows = len(report.results)
        with open_warehouse(settings, store) as wh, wh.transaction():
            if not is_partial(extra):  # a complete build: the next one starts from here
                record_build(wh, started, selection)
            # the build and its line in the run history commit together
            write_unit(wh, replace(unit, status="succeeded", finished_at=now()))
    report.command = "build"  # the selection is on the stage line above
    rep.dbt(report)
    return report


def funnel_land(settings: Settings, rep: Reporter, files: list[Path]) -> list[str]:
    """`dwh funnel land`: copy local funnel files into the store's landing area."""
    from .funnel import land_files

    store = ObjectStore(settings.store_url, settings)
    rep.stage(f"land {len(files)} funnel file(s) in {store.uri(layout.LANDING_FUNNEL)}")
    keys = land_files(store, files)
    for key in keys:
        rep.echo(f"  {store.uri(key)}")
    return keys


def funnel_convert(settings: Settings, rep: Reporter, file: str | None = None, force: bool = False):
    """Convert one named landing file, or every new or changed one; register Glue partitions.

    Each file is its own unit (loaders/runs.py): a file that fails (not a funnel file, too many
    rejects, the store or Glue refusing) is recorded and named, and the other files go on. Then,
    if any failed, the error is raised: the one file's own error, or a FunnelError naming them
    all. Returns the ConvertReports of the files that did not fail.
    """
    from .funnel import FunnelError, convert_file, landing_files

    store = ObjectStore(settings.store_url, settings)
    register = None
    if settings.glue_database:
        from .funnel import GlueCatalog

        register = GlueCatalog(settings, store).add_partitions
    rep.stage(f"convert funnel files in {store.uri(layout.LANDING_FUNNEL)} -> {store.uri(layout.FUNNEL_LAKE)}")
    reports = []
    failed: list[tuple[str, Exception]] = []
    with recording(rep.run, StoreHistory(store)):
        for key in [file] if file else landing_files(store):
            name = key.rstrip("/").rsplit("/", 1)[-1]
            try:
                with rep.run.unit("funnel_convert", name) as unit:
                    size = _size(store, key) if rep.shows_progress else None
                    with rep.task(f"convert {name}", size, "bytes") as task:
                        report = convert_file(settings, store, key, force, lambda _n, _r, b: task.update(b), register)
                    unit.rows, unit.bytes = report.rows_written, report.bytes_read
                    unit.status = "skipped" if report.status == "skipped" else "succeeded"
            except FUNNEL_FILE_ERRORS as exc:  # this file only: recorded as failed by its unit
                failed.append((name, exc))
                rep.echo(f"  {name:<24} failed: {first_line(exc)}")
                continue
            reports.append(report)
            _echo_conversion(rep, store, report, settings if register else None)
    if not reports and not failed:
        rep.echo("  no landing file")
    if len(failed) == 1:
        raise failed[0][1]
    if failed:
        raise FunnelError(f"{len(failed)} funnel files failed: {', '.join(n for n, _ in failed)} (see above)")
    return reports


def _echo_conversion(rep: Reporter, store: ObjectStore, r, glue: Settings | None) -> None:
    """One line per converted (or skipped) file."""
    if r.status == "skipped":
        rep.echo(f"  {r.source:<24} already converted (unchanged): skipped")
        return
    rejected = f", {r.rows_rejected:,} rejected -> {store.uri(r.rejects_file)}" if r.rejects_file else ""
    catalog = f", Glue {glue.glue_database}.{glue.glue_table}" if glue else ""
    rep.echo(
        f"  {r.source:<24} {r.rows_read:>10,} rows read, {r.rows_written:>10,} written{rejected}; "
        f"{len(r.partitions)} month(s), {mb(r.bytes_read)} -> {mb(r.bytes_written)}, "
        f"{r.seconds:.1f}s ({r.bytes_read / 1e6 / max(r.seconds, 1e-9):.0f} MB/s){catalog}"
    )


def _size(store: ObjectStore, key: str) -> int | None:
    """A landing file's size for its progress bar (None when it cannot be known yet)."""
    from .funnel import source_key

    try:
        return store.info(source_key(store, key)).size
    except Exception:
        return None


def docs(settings: Settings, rep: Reporter) -> Path:
    """dbt docs generate --static: the docs site (models, columns, lineage) as one HTML file."""
    rep.stage(f"dbt docs generate on {settings.warehouse}")
    run_dbt(settings, ["docs", "generate", "--static"], quiet=True)
    page = settings.data_dir / "dbt" / "target" / "static_index.html"
    _repair_static_docs(page)
    rep.echo(f"  docs site: {page} (open it in a browser; no server needed)")
    return page


def dashboard(settings: Settings, rep: Reporter, out: Path | None = None) -> Path:
    """`dwh dashboard`: the BI views and the pipeline's health as one static HTML page."""
    from .dashboard import write_dashboard

    rep.stage(f"dashboard from {settings.warehouse}")
    path = write_dashboard(settings, out)
    rep.echo(f"  dashboard: {path} (open it in a browser; it works offline)")
    return path


STATIC_DOCS_REPAIRS = (
    # An SVG <use> in dbt docs' menu template: the browser requests the literal "{{ getIcon(...) }}"
    # before Angular interpolates it; `ng-attr-` sets the attribute only once it is interpolated.
    ('<use xlink:href="{{ getIcon(', '<use ng-attr-xlink:href="{{ getIcon('),
    # A favicon link left as an unresolved webpack `require` (no such file): an empty icon instead.
    ("href=\"${require('./assets/favicons/favicon.ico')}\"", 'href="data:,"'),
)
"""Two defects of dbt's static docs page that make a browser request files that do not exist."""


def _repair_static_docs(page: Path) -> None:
    """Fix STATIC_DOCS_REPAIRS in the page dbt wrote, so it loads with no failed request
    (tests/test_dashboard.py opens it in Chromium). A newer dbt without them changes nothing."""
    text = page.read_text(encoding="utf-8")
    for broken, fixed in STATIC_DOCS_REPAIRS:
        text = text.replace(broken, fixed)
    page.write_text(text, encoding="utf-8")


def sweep_litter(settings: Settings, rep: Reporter) -> None:
    """Remove what killed runs left in the store, once older than DWH_LITTER_AGE_HOURS
    (loaders/litter.py), and say how much."""
    from .litter import sweep

    store = ObjectStore(settings.store_url, settings)
    rep.echo(sweep(store, settings.litter_age_hours).describe())


def run(settings: Settings, rep: Reporter, tables: list[str] | None = None) -> None:
    """One scheduled run: remove old litter, convert new funnel files, extract what changed, load
    it, build, and write the dashboard.

    Every stage runs whatever failed before it (contract 13): a funnel file over its reject
    ratio, a table whose extract fails, a batch set aside or an unreachable source cost only
    themselves, and the build takes what did load. The run then ends with a summary naming
    every failed unit (and every stage that could not start) and raises RunFailed (exit
    status 1).
    """
    since = len(rep.run.outcomes)
    stopped: list[str] = []
    extracted: list[BatchReport] = []

    def verify_stage() -> None:  # DWH_VERIFY_EVERY, and after a historical extract (docs/verify.md)
        if verify_due(settings, any(r.mode == "historical" and r.batch_id for r in extracted)):
            verify(settings, rep, tables, repair=True)  # prints its cost

    stages: list[tuple[str, Callable[[], object]]] = [
        ("litter", lambda: sweep_litter(settings, rep)),
        ("funnel convert", lambda: funnel_convert(settings, rep)),
        ("extract", lambda: extracted.extend(extract(settings, rep, "auto", tables))),
        ("load", lambda: load(settings, rep, tables)),
        ("build", lambda: build(settings, rep)),
        ("verify", verify_stage),
        ("dashboard", lambda: dashboard(settings, rep)),
    ]
    for name, stage in stages:
        before = len(rep.run.failures)
        try:
            stage()
        except RunFailed:
            pass  # its failed units are in rep.run; the next stage goes on
        except USER_ERRORS as exc:
            if len(rep.run.failures) == before:  # not a unit's failure: the stage could not run
                rep.echo(f"  {name} stopped: {first_line(exc)}")
                log.debug("%s stopped", name, exc_info=exc)
                stopped.append(f"{name} stopped: {first_line(exc)}")
    failures = [o for o in rep.run.outcomes[since:] if o.status in ("failed", "set_aside")]
    if failures or stopped:
        rep.stage(f"run finished with {len(failures) + len(stopped)} failure(s)")
        for f in failures:
            rep.echo(f"  {f.stage} {f.unit}: {f.status}: {f.error}")
        for line in stopped:
            rep.echo(f"  {line}")
        raise RunFailed(failures, stopped)


def verify_due(settings: Settings, after_historical: bool) -> bool:
    """Whether `dwh run` verifies and repairs now: DWH_VERIFY_EVERY is set and either a
    historical extract ran in this run or the oldest latest verify in raw._verify_log is older
    than DWH_VERIFY_EVERY (or there is none)."""
    every = settings.verify_every_seconds
    if not every:
        return False
    if after_historical:
        return True
    from .status import VERIFY_LOG

    store = ObjectStore(settings.store_url, settings)
    with open_warehouse(settings, store) as wh:
        if not wh.has_table(VERIFY_LOG):
            return True
        rows = wh.execute(
            f"SELECT min(last_verified) FROM (SELECT table_name, max(verified_at) AS last_verified "
            f"FROM {wh.raw_name(VERIFY_LOG)} GROUP BY table_name) AS latest"
        )
    last = rows[0][0] if rows else None
    return last is None or (datetime.now(UTC).replace(tzinfo=None) - last).total_seconds() >= every


def verify(
    settings: Settings, rep: Reporter, tables: list[str] | None = None, repair: bool = False, examples: int = 5
) -> list:
    """`dwh verify [--repair]`: compare each table between the source and the warehouse's latest
    versions (loaders/verify/diff.py); log each result in raw._verify_log (read by `dwh status`)
    and the run history. With `repair`, write a repair batch per differing table
    (loaders/verify/repair.py), load and build it, and verify again. Returns the last TableDiff
    of each table."""
    from .verify.diff import verify_table
    from .verify.repair import write_repair_batch

    selected = select_tables(settings.project_dir, tables)
    store = ObjectStore(settings.store_url, settings)

    since = len(rep.run.outcomes)
    failed: dict[str, UnitOutcome] = {}  # table -> its last failed verify unit
    stopped: list[str] = []  # the repair's load or build, when it could not finish

    def check(label: str, final: bool) -> list:
        found = []
        with open_source(settings.source_url) as engine, open_warehouse(settings, store) as wh:
            ensure_raw_tables(wh, select_tables(settings.project_dir, None))
            ensure_verify_log(wh)
            rep.stage(f"verify{label}: {engine.name} source against {settings.warehouse} ({settings.raw_schema}.*)")
            ensure_history(wh)
            with recording(rep.run, WarehouseHistory(wh)):
                for table in selected:
                    try:
                        diff = verify_one(engine, wh, table, final)
                    except USER_ERRORS as exc:  # this table only (contract 13): the others are verified
                        rep.echo(f"  {table.name}: not verified: {first_line(exc)}")
                        failed[table.name] = next(
                            o for o in reversed(rep.run.outcomes) if o.stage == "verify" and o.unit == table.name
                        )
                        continue
                    write_verify_log(wh, diff, examples)
                    rep.echo("  " + diff.summary(examples))
                    found.append(diff)
        return found

    def verify_one(engine: SourceEngine, wh: Warehouse, table: Table, final: bool) -> Any:
        """One table's verify as a unit of the run. A table whose source schema the policy stops
        (a declared column dropped or renamed, a narrowing; DWH_SCHEMA_CHANGES) is not compared:
        its declared columns are not all in the source (and SQLite would read a missing quoted
        column as a string literal), so the unit fails with the extract's own line."""
        with rep.run.unit("verify", table.name) as unit:
            plan = check_source_schema(
                engine, table, settings.schema_changes, cursor_optional=settings.capture == "binlog"
            )
            stop = plan.stop_message()
            if stop:
                raise SchemaChangeError(stop, plan)
            diff = verify_table(engine, wh, table, read_watermark(store, table))
            unit.rows, unit.bytes = diff.source_rows, diff.source_bytes
            if not diff.equal:
                # a difference that --repair is about to fix is not a failure of the run
                unit.status = "failed" if final else "succeeded"
                unit.error = f"{len(diff.missing)} missing, {len(diff.extra)} extra, {len(diff.changed)} changed"
        return diff

    diffs = check("", final=not repair)
    if repair and any(not d.equal for d in diffs):
        with open_source(settings.source_url) as engine:
            tables_by_name = {t.name: t for t in selected}
            for d in diffs:
                try:
                    batch_id = write_repair_batch(settings, engine, store, tables_by_name[d.table], d)
                except USER_ERRORS as exc:  # this table only: the verify after the repair names it
                    rep.echo(f"  {d.table}: not repaired: {first_line(exc)}")
                    continue
                if batch_id:
                    rep.echo(f"  {d.table}: repair batch {batch_id} written")
        for name, stage in (
            ("load", lambda: load(settings, rep, [d.table for d in diffs if not d.equal])),
            ("build", lambda: build(settings, rep, check_freshness=False)),
        ):
            try:
                stage()
            except USER_ERRORS as exc:  # what did load is still verified again (raw, not staging)
                rep.echo(f"  {name} after the repair stopped: {first_line(exc)}")
                stopped.append(f"{name} after the repair stopped: {first_line(exc)}")
        diffs = check(" (after repair)", final=True)
    seconds, read = sum(d.seconds for d in diffs), sum(d.source_bytes for d in diffs)
    what = "verify and repair" if repair else "verify"
    rep.echo(f"  {what} cost: {seconds:.1f}s, ~{read / 1e6:.1f} MB read from the source")
    if failed or stopped:  # differences alone return (exit 1 from the CLI); this names them too
        last = {o.unit: o for o in rep.run.outcomes[since:] if o.stage == "verify"}
        raise RunFailed([o for o in last.values() if o.status == "failed"], stopped, reports=diffs)
    return diffs


VERIFY_LOG_COLUMNS = (
    "table_name VARCHAR(128) NOT NULL, verified_at TIMESTAMP NOT NULL, status VARCHAR(16) NOT NULL, "
    "source_rows BIGINT, warehouse_rows BIGINT, missing BIGINT, extra BIGINT, changed BIGINT, in_flight BIGINT, "
    "ranges BIGINT, source_bytes BIGINT, seconds DOUBLE PRECISION, examples VARCHAR(1024)"
)


def ensure_verify_log(wh: Warehouse) -> None:
    """raw._verify_log: one row per table verified (contract 10; `dwh status` reads the latest)."""
    from .status import VERIFY_LOG

    wh.execute(f"CREATE TABLE IF NOT EXISTS {wh.raw_name(VERIFY_LOG)} ({VERIFY_LOG_COLUMNS})")


def write_verify_log(wh: Warehouse, diff: Any, examples: int) -> None:
    """One row of raw._verify_log for a TableDiff."""
    from .status import VERIFY_LOG
    from .warehouses import literal

    keys = [*diff.missing[:examples], *diff.extra[:examples], *diff.changed[:examples]]
    shown = ", ".join("/".join(str(v) for v in k) for k in keys)[:1000]
    values = [
        literal(diff.table),
        f"CAST({literal(datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMP)",
        literal("equal" if diff.equal else "different"),
        *(
            str(int(v))
            for v in (
                diff.source_rows,
                diff.warehouse_rows,
                len(diff.missing),
                len(diff.extra),
                len(diff.changed),
                diff.in_flight,
                diff.ranges,
                diff.source_bytes,
            )
        ),
        repr(round(diff.seconds, 3)),
        literal(shown),
    ]
    wh.execute(f"INSERT INTO {wh.raw_name(VERIFY_LOG)} VALUES ({', '.join(values)})")
