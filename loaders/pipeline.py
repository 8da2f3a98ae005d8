"""The stages wired together: what `dwh run` and `dwh demo` do.

Each function here is a thin sequence over the stage modules; the CLI is a thinner layer still.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .config import Settings
from .dbt_runner import DbtReport, run_dbt
from .extract import BatchReport, Mode, extract_table, read_watermark
from .generate import generate_olist
from .load import LoadReport, load_tables
from .simulate import HourReport, simulate_hour
from .source import LoadReport as SourceLoadReport
from .source import SourceDB, load_folder
from .store import ObjectStore
from .tables import Table, select_tables
from .warehouse import open_warehouse, publish_funnel

Echo = Callable[[str], None]


@dataclass
class Reporter:
    """Prints what each stage did: rows, bytes, time, where the output went."""

    echo: Echo = print
    progress: Callable[[str], None] | None = None
    started: float = field(default_factory=time.perf_counter)

    def stage(self, title: str) -> None:
        self.echo(f"\n== {title}")

    def source_load(self, r: SourceLoadReport) -> None:
        self.echo(f"  {r.table:<34} {r.rows_read:>10,} rows read  {r.rows_stored:>10,} stored  {r.seconds:6.1f}s")

    def extract(self, r: BatchReport) -> None:
        if r.batch_id is None:
            self.echo(f"  {r.table:<34} {'no changed rows':>21}  watermark -> {r.upper}")
            return
        self.echo(
            f"  {r.table:<34} {r.rows:>10,} rows  {_mb(r.bytes):>9}  {len(r.parts)} part(s)  "
            f"{r.seconds:6.1f}s  -> {r.manifest}"
        )

    def load(self, r: LoadReport) -> None:
        if r.status == "loaded":
            self.echo(
                f"  {r.table:<34} batch {r.batch_id}: {r.rows_in_batch:>9,} rows, "
                f"{r.rows_inserted:>9,} new versions  {r.seconds:6.1f}s"
            )

    def dbt(self, r: DbtReport) -> None:
        counts: dict[str, int] = {}
        for _, status, _ in r.results:
            counts[status] = counts.get(status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        self.echo(f"  dbt {r.command}: {summary or 'nothing to do'}")

    def tick(self, message: str) -> None:
        if self.progress:
            self.progress(message)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def generate(settings: Settings, out: Path, rep: Reporter) -> dict[str, int]:
    rep.stage(f"generate Olist CSV files (scale {settings.scale}, seed {settings.seed}) -> {out}")
    started = time.perf_counter()
    counts = generate_olist(out, scale=settings.scale, seed=settings.seed,
                            progress=lambda f, n: rep.tick(f"{f}: {n:,} rows"))
    for name, rows in counts.items():
        rep.echo(f"  {name:<44} {rows:>10,} rows")
    rep.echo(f"  done in {time.perf_counter() - started:.1f}s")
    return counts


def load_source(settings: Settings, csv_dir: Path, rep: Reporter, replace: bool = False,
                tables: list[str] | None = None) -> list[SourceLoadReport]:
    selected = select_tables(settings.project_dir, tables)
    with SourceDB(settings.source_url) as db:
        rep.stage(f"load the source database ({db.dialect}) from {csv_dir}")
        return load_folder(db, selected, csv_dir, replace=replace, progress=rep.source_load)


def extract(settings: Settings, rep: Reporter, mode: Mode | str = "auto",
            tables: list[str] | None = None) -> list[BatchReport]:
    selected = select_tables(settings.project_dir, tables)
    store = ObjectStore(settings.store_url, settings)
    reports = []
    with SourceDB(settings.source_url) as db:
        rep.stage(f"extract ({mode}) from {db.dialect} -> {store.url}")
        for table in selected:
            table_mode = mode
            if mode == "auto":
                table_mode = "current" if read_watermark(store, table) else "historical"
            report = extract_table(settings, db, store, table, table_mode,  # type: ignore[arg-type]
                                   progress=lambda t, n: rep.tick(f"{t}: {n:,} rows"))
            rep.extract(report)
            reports.append(report)
    return reports


def load(settings: Settings, rep: Reporter, tables: list[str] | None = None) -> list[LoadReport]:
    selected: list[Table] = select_tables(settings.project_dir, tables)
    store = ObjectStore(settings.store_url, settings)
    with open_warehouse(settings, store) as wh:
        rep.stage(f"load new batches from {store.url} into {settings.warehouse} ({settings.raw_schema}.*)")
        reports = load_tables(wh, selected, progress=rep.load,
                              declared=select_tables(settings.project_dir, None))
        skipped = sum(r.status == "skipped" for r in reports)
        loaded = len(reports) - skipped
        rep.echo(f"  {loaded} new batch(es) loaded; {skipped} already in the load log")
        rep.echo(f"  funnel: {publish_funnel(wh)}")
        return reports


def build(settings: Settings, rep: Reporter, extra: list[str] | None = None,
          check_freshness: bool = True, scope: str | None = None) -> DbtReport:
    """dbt source freshness (a stale raw table stops here), then dbt build.

    By default only what is downstream of data loaded since the last successful build runs
    (loaders/build_scope.py); `scope="all"`, DWH_BUILD_SCOPE=all, --full-refresh or an explicit
    selection build the whole project or that selection.
    """
    from .build_scope import is_partial, now, plan, record_build

    extra = list(extra or [])
    started = now()
    store = ObjectStore(settings.store_url, settings)
    with open_warehouse(settings, store) as wh:
        selection = plan(wh, settings, extra, scope or settings.build_scope)
    changed = [sel.split(".", 1)[1].rstrip("+") for sel in selection or []]
    shown = ("the whole project" if selection is None else
             f"what is downstream of new data in {', '.join(changed)}" if changed else "nothing new")
    rep.stage(f"dbt build on {settings.warehouse}: {shown}")
    if check_freshness:  # also when nothing is new: a stuck pipeline must not go unnoticed
        rep.dbt(run_dbt(settings, ["source", "freshness"], quiet=True))
    if selection == []:
        rep.echo("  no batch loaded and no funnel file converted since the last build: nothing to build")
        return DbtReport("build", True)
    if settings.warehouse == "redshift" and settings.glue_database:
        # The funnel source is the Spectrum schema over the Glue database: create it if missing.
        location = f"{settings.store_url.rstrip('/')}/lake/funnel_events/"
        args = json.dumps({"glue_database": settings.glue_database, "location": location})
        rep.dbt(run_dbt(settings, ["run-operation", "setup_spectrum", "--args", args], quiet=True))
    selecting = ["--select", " ".join(selection)] if selection else []
    report = run_dbt(settings, ["build", *extra, *selecting], quiet=True)
    report.command = "build"  # the selection is on the stage line above
    rep.dbt(report)
    if not is_partial(extra):
        with open_warehouse(settings, store) as wh:  # a complete build: the next one starts from here
            record_build(wh, started, selection)
    return report


def funnel_generate(settings: Settings, rep: Reporter, out: Path, olist_csv: Path,
                    rows_per_file: int | None = None, years: tuple[int, ...] = (2016, 2017, 2018)) -> dict[str, int]:
    from .funnel_generate import generate_funnel

    rep.stage(f"generate funnel files (users and products from {olist_csv}) -> {out}")
    counts = generate_funnel(out, olist_csv, scale=settings.scale, seed=settings.seed, years=years,
                             rows_per_file=rows_per_file, progress=lambda f, n: rep.tick(f"{f}: {n:,} rows"))
    for name, rows in counts.items():
        size = (out / name).stat().st_size
        rep.echo(f"  {name:<24} {rows:>10,} rows  {_mb(size):>9}")
    return counts


def funnel_land(settings: Settings, rep: Reporter, files: list[Path]) -> list[str]:
    from .funnel import land_files

    store = ObjectStore(settings.store_url, settings)
    rep.stage(f"land {len(files)} funnel file(s) in {store.uri('landing/funnel')}")
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
        from .catalog import GlueCatalog

        register = GlueCatalog(settings, store).add_partitions
    rep.stage(f"convert funnel files in {store.uri('landing/funnel')} -> {store.uri('lake/funnel_events')}")
    tick = lambda name, n: rep.tick(f"{name}: {n:,} rows")  # noqa: E731
    reports = ([convert_file(settings, store, file, force, tick, register)] if file
               else convert_pending(settings, store, force, tick, register))
    for r in reports:
        if r.status == "skipped":
            rep.echo(f"  {r.source:<24} already converted (unchanged): skipped")
            continue
        rejected = f", {r.rows_rejected:,} rejected -> {store.uri(r.rejects_file)}" if r.rows_rejected else ""
        glue = f", Glue {settings.glue_database}.{settings.glue_table}" if register else ""
        rep.echo(f"  {r.source:<24} {r.rows_read:>10,} rows read, {r.rows_written:>10,} written{rejected}; "
                 f"{len(r.partitions)} month(s), {_mb(r.bytes_read)} -> {_mb(r.bytes_written)}, "
                 f"{r.seconds:.1f}s ({r.bytes_read / 1e6 / max(r.seconds, 1e-9):.0f} MB/s){glue}")
    if not reports:
        rep.echo("  no landing file")
    return reports


def docs(settings: Settings, rep: Reporter) -> Path:
    """dbt docs generate --static: one self-contained HTML file with the catalog."""
    rep.stage(f"dbt docs generate on {settings.warehouse}")
    run_dbt(settings, ["docs", "generate", "--static"], quiet=True)
    page = settings.data_dir / "dbt" / "target" / "static_index.html"
    rep.echo(f"  catalog: {page} (open it in a browser; no server needed)")
    return page


def run(settings: Settings, rep: Reporter, tables: list[str] | None = None) -> None:
    """One scheduled run: convert new funnel files, extract what changed, load it, build."""
    funnel_convert(settings, rep)
    extract(settings, rep, "auto", tables)
    load(settings, rep, tables)
    build(settings, rep)


def simulate(settings: Settings, rep: Reporter, hours: int = 1, orders_per_hour: int = 20) -> list[HourReport]:
    rng = random.Random(settings.seed + int(time.time()))
    out = []
    with SourceDB(settings.source_url) as db:
        rep.stage(f"simulate {hours} hour(s) of shop activity in the source ({db.dialect})")
        for _ in range(hours):
            r = simulate_hour(db, rng, orders_per_hour=orders_per_hour)
            rep.echo(
                f"  {r.hour_start:%Y-%m-%d %H:00}: {r.new_orders} new orders ({r.new_items} items), "
                f"{r.approved} approved, {r.shipped} shipped, {r.delivered} delivered, "
                f"{r.canceled} canceled, {r.new_reviews} reviews"
            )
            out.append(r)
    return out


def demo(settings: Settings, rep: Reporter) -> None:
    """The whole pipeline from nothing, on the embedded default, twice (historical, then hourly)."""
    data = settings.data_dir
    for leftover in ("lake", "olist.sqlite", "olist.sqlite-wal", "olist.sqlite-shm", "warehouse.duckdb",
                     "warehouse.duckdb.wal", "csv", "funnel"):
        path = data / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    csv_dir = data / "csv"
    generate(settings, csv_dir, rep)
    load_source(settings, csv_dir, rep)
    funnel_dir = data / "funnel"
    funnel_generate(settings, rep, funnel_dir, csv_dir, rows_per_file=max(1000, int(400_000 * settings.scale)))
    funnel_land(settings, rep, sorted(funnel_dir.glob("*_funnel.csv")))
    funnel_convert(settings, rep)
    extract(settings, rep, "historical")
    load(settings, rep)
    build(settings, rep)
    simulate(settings, rep, hours=1, orders_per_hour=max(5, int(400 * settings.scale)))
    extract(settings, rep, "current")
    load(settings, rep)
    build(settings, rep)
    rep.echo(f"\ndemo finished in {time.perf_counter() - rep.started:.0f}s; warehouse: {settings.duckdb_path}")
