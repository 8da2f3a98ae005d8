"""The stages wired together: what each `dwh` command and each Glue job runs.

Each function here is a thin sequence over the stage packages; the CLI is a thinner layer still.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from . import layout
from .build import DbtReport, run_dbt
from .config import Settings
from .declarations import Table, select_tables
from .extract import BatchReport, extract_table, read_watermark
from .layout import MODES, Mode
from .load import BatchLoadReport, ensure_raw_tables, load_pending_batches
from .report import Reporter, mb
from .sources import open_source
from .sources.bootstrap import BulkLoadReport, load_folder
from .store import ObjectStore
from .warehouses import open_warehouse

ExtractMode = Literal["auto"] | Mode
"""`auto`: historical for a table without a watermark yet, else current."""
EXTRACT_MODES: tuple[str, ...] = ("auto", *MODES)


def load_source(
    settings: Settings, csv_dir: Path, rep: Reporter, replace: bool = False, tables: list[str] | None = None
) -> list[BulkLoadReport]:
    """`dwh source load`: create the schema and bulk-load the CSV files into the source."""
    selected = select_tables(settings.project_dir, tables)
    with open_source(settings.source_url) as engine, rep.run.unit("source_load", str(csv_dir)) as unit:
        rep.stage(f"load the source database ({engine.name}) from {csv_dir}")
        reports = load_folder(engine, selected, csv_dir, replace=replace, progress=rep.bulk_load)
        unit.rows = sum(r.rows_stored for r in reports)
        return reports


def extract(
    settings: Settings, rep: Reporter, mode: ExtractMode = "auto", tables: list[str] | None = None
) -> list[BatchReport]:
    """`dwh extract`: one batch per table into the object store."""
    selected = select_tables(settings.project_dir, tables)
    store = ObjectStore(settings.store_url, settings)
    reports = []
    with open_source(settings.source_url) as engine:
        rep.stage(f"extract ({mode}) from {engine.name} -> {store.url}")
        for table in selected:
            with rep.run.unit("extract", table.name) as unit:
                table_mode: Mode = (
                    ("current" if read_watermark(store, table) else "historical") if mode == "auto" else mode
                )
                report = extract_table(
                    settings, engine, store, table, table_mode, progress=lambda t, n: rep.tick(f"{t}: {n:,} rows")
                )
                unit.rows, unit.bytes = report.rows, report.bytes
                unit.batch_ids = [report.batch_id] if report.batch_id else []
            rep.extract(report)
            reports.append(report)
    return reports


def load(settings: Settings, rep: Reporter, tables: list[str] | None = None) -> list[BatchLoadReport]:
    """`dwh load`: every published batch not yet loaded, exactly once; then publish the funnel lake."""
    selected: list[Table] = select_tables(settings.project_dir, tables)
    store = ObjectStore(settings.store_url, settings)
    with open_warehouse(settings, store) as wh:
        rep.stage(f"load new batches from {store.url} into {settings.warehouse} ({settings.raw_schema}.*)")
        ensure_raw_tables(wh, select_tables(settings.project_dir, None))
        reports = []
        for table in selected:
            with rep.run.unit("load", table.name) as unit:
                table_reports = load_pending_batches(wh, [table], progress=rep.load, declared=[])
                loaded_now = [r for r in table_reports if r.status == "loaded"]
                unit.rows = sum(r.rows_inserted for r in loaded_now)
                unit.batch_ids = [r.batch_id for r in loaded_now]
                unit.status = "succeeded" if loaded_now else "skipped"
            reports += table_reports
        skipped = sum(r.status == "skipped" for r in reports)
        loaded = len(reports) - skipped
        rep.echo(f"  {loaded} new batch(es) loaded; {skipped} already in the load log")
        rep.echo(f"  funnel: {wh.publish_funnel()}")
        return reports


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
    from .build.scope import is_partial, now, plan, record_build

    extra = list(extra or [])
    started = now()
    store = ObjectStore(settings.store_url, settings)
    with open_warehouse(settings, store) as wh:
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
    if check_freshness:  # also when nothing is new: a stuck pipeline must not go unnoticed
        rep.dbt(run_dbt(settings, ["source", "freshness"], quiet=True))
    if selection == []:
        rep.echo("  no batch loaded and no funnel file converted since the last build: nothing to build")
        return DbtReport("build", True)
    for args in preparations:
        rep.dbt(run_dbt(settings, args, quiet=True))
    selecting = ["--select", " ".join(selection)] if selection else []
    with rep.run.unit("build", "dbt build") as unit:
        report = run_dbt(settings, ["build", *extra, *selecting], quiet=True)
        unit.rows = len(report.results)
    report.command = "build"  # the selection is on the stage line above
    rep.dbt(report)
    if not is_partial(extra):
        with open_warehouse(settings, store) as wh:  # a complete build: the next one starts from here
            record_build(wh, started, selection)
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
    """Convert one named landing file, or every new or changed one; register Glue partitions."""
    from .funnel import convert_file, convert_pending

    store = ObjectStore(settings.store_url, settings)
    register = None
    if settings.glue_database:
        from .funnel import GlueCatalog

        register = GlueCatalog(settings, store).add_partitions
    rep.stage(f"convert funnel files in {store.uri(layout.LANDING_FUNNEL)} -> {store.uri(layout.FUNNEL_LAKE)}")
    tick = lambda name, n: rep.tick(f"{name}: {n:,} rows")
    reports = (
        [convert_file(settings, store, file, force, tick, register)]
        if file
        else convert_pending(settings, store, force, tick, register)
    )
    for r in reports:
        if r.status == "skipped":
            rep.echo(f"  {r.source:<24} already converted (unchanged): skipped")
            continue
        rejected = f", {r.rows_rejected:,} rejected -> {store.uri(r.rejects_file)}" if r.rejects_file else ""
        glue = f", Glue {settings.glue_database}.{settings.glue_table}" if register else ""
        rep.echo(
            f"  {r.source:<24} {r.rows_read:>10,} rows read, {r.rows_written:>10,} written{rejected}; "
            f"{len(r.partitions)} month(s), {mb(r.bytes_read)} -> {mb(r.bytes_written)}, "
            f"{r.seconds:.1f}s ({r.bytes_read / 1e6 / max(r.seconds, 1e-9):.0f} MB/s){glue}"
        )
    if not reports:
        rep.echo("  no landing file")
    return reports


def docs(settings: Settings, rep: Reporter) -> Path:
    """dbt docs generate --static: the docs site (models, columns, lineage) as one HTML file."""
    rep.stage(f"dbt docs generate on {settings.warehouse}")
    run_dbt(settings, ["docs", "generate", "--static"], quiet=True)
    page = settings.data_dir / "dbt" / "target" / "static_index.html"
    rep.echo(f"  docs site: {page} (open it in a browser; no server needed)")
    return page


def run(settings: Settings, rep: Reporter, tables: list[str] | None = None) -> None:
    """One scheduled run: convert new funnel files, extract what changed, load it, build."""
    funnel_convert(settings, rep)
    extract(settings, rep, "auto", tables)
    load(settings, rep, tables)
    build(settings, rep)
