"""`dwh`: the command line. A thin layer over loaders.pipeline; every stage is a subcommand.

Settings come from DWH_* environment variables (see `dwh settings`); the options below
override them for one call. Errors a user can fix are printed as one line naming the file,
table, row or setting at fault, with exit status 1; --debug shows tracebacks and SQL.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast, get_args

import click

from . import pipeline
from .config import ConfigError, LogFormat, Settings, WarehouseName
from .console import configure_logging
from .errors import USER_ERRORS
from .report import Reporter, console_reporter


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        click.echo(f"\r  … {message:<70}", err=True, nl=False)


def _settings(ctx: click.Context, **overrides: object) -> Settings:
    return Settings.from_env(**{**ctx.obj["overrides"], **overrides})


def _exclusive(settings: Settings, work: Callable[[], object]) -> None:
    """Run `work` holding the warehouse's run lock (loaders/runlock.py); when another run still
    holds it after DWH_LOCK_WAIT_SECONDS, print one line and return (exit status 0)."""
    from .runlock import SKIPPED, run_lock

    with run_lock(settings) as held:
        if not held:
            click.echo(SKIPPED)
            return
        work()


def _log_format() -> LogFormat:
    value = os.environ.get("DWH_LOG_FORMAT") or "text"
    if value not in get_args(LogFormat):
        raise ConfigError(f"DWH_LOG_FORMAT={value!r}: use {' or '.join(get_args(LogFormat))}")
    return cast(LogFormat, value)


def _reporter() -> Reporter:
    """Text lines, with progress bars when stderr is a terminal; JSON lines with DWH_LOG_FORMAT=json."""

    log_format = _log_format()

    def echo(line: str) -> None:
        if sys.stderr.isatty() and log_format == "text":
            click.echo("\r" + " " * 76 + "\r", err=True, nl=False)
        click.echo(line)

    return console_reporter(log_format, echo, tty=sys.stderr.isatty(), progress=_progress)


TABLES = click.option(
    "--table",
    "tables",
    multiple=True,
    metavar="NAME",
    help="Only this declared table (repeatable). Default: every table.",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--source-url",
    help="Source database: sqlite:///file.sqlite or mysql://user:pw@host:3306/db "
    "[env DWH_SOURCE_URL; default sqlite:///data/olist.sqlite]",
)
@click.option(
    "--store-url", help="Object store: a folder or s3://bucket/prefix [env DWH_STORE_URL; default data/store]"
)
@click.option(
    "--warehouse",
    type=click.Choice(get_args(WarehouseName)),
    help="Warehouse and dbt target [env DWH_WAREHOUSE; default duckdb]",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Where the embedded defaults live [env DWH_DATA_DIR; default ./data in the project]",
)
@click.option("--debug", is_flag=True, help="Show SQL, tracebacks and library logs.")
@click.pass_context
def main(ctx: click.Context, source_url, store_url, warehouse, data_dir, debug) -> None:
    """Sync the Olist shop database into a star schema: extract -> object store -> warehouse -> dbt.

    \b
    Embedded default (no credentials): SQLite -> ./data/store -> DuckDB.
    AWS: MySQL/RDS -> s3://bucket/prefix -> Redshift, by setting DWH_* variables.
    Start with `dwh demo`, then `dwh run` every hour (cron, or the AWS schedule).
    """
    configure_logging(_log_format(), debug)
    ctx.obj = {
        "debug": debug,
        "overrides": {
            "source_url": source_url,
            "store_url": store_url,
            "warehouse": warehouse,
            "data_dir": data_dir,
        },
    }


@main.command()
@click.option(
    "--scale", type=float, default=None, help="1 = the real dataset's row counts (99k orders). [default 0.05]"
)
@click.pass_context
def demo(ctx, scale) -> None:
    """Run the whole pipeline from nothing on the embedded default.

    Generates Olist CSVs and funnel files, loads the CSVs into SQLite, lands and converts the
    funnel files, extracts every table (historical), loads DuckDB, runs dbt build; then
    simulates one hour of orders and deletes one review in the source, extracts incrementally,
    loads and builds again, verifies every table against the source and repairs what differs
    (the deleted review), and writes the dashboard. Replaces the demo files in the data folder: olist.sqlite, store/,
    warehouse.duckdb, csv/, funnel/, dashboard.html.
    """
    settings = _settings(ctx, scale=scale)
    if settings.warehouse != "duckdb" or settings.store_url.startswith("s3://"):
        raise ConfigError("dwh demo runs the embedded default only: unset DWH_WAREHOUSE and DWH_STORE_URL")
    from olist_demo.run import demo as run_demo

    run_demo(settings, _reporter())


@main.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the nine CSV files to.")
@click.option("--scale", type=float, default=1.0, show_default=True, help="1 = the real dataset's row counts.")
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed and scale, same bytes.")
@click.pass_context
def generate(ctx, out, scale, seed) -> None:
    """Write the nine Olist CSV files, quirks included (docs/data.md), streaming."""
    from olist_demo.run import generate as run_generate

    run_generate(_settings(ctx, scale=scale, seed=seed), out, _reporter())


@main.group()
def source() -> None:
    """The source database (SQLite or MySQL/RDS)."""


@source.command("load")
@click.option(
    "--csv-dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="Folder with the nine Olist CSV files (generated, or the Kaggle files unchanged).",
)
@click.option("--replace", is_flag=True, help="Drop and recreate the tables first.")
@TABLES
@click.pass_context
def source_load(ctx, csv_dir, replace, tables) -> None:
    """Create the Olist schema and bulk-load the CSV files into it.

    MySQL uses LOAD DATA LOCAL INFILE (local_infile must be ON on the server). Every field is
    checked against its declared type, the same way on SQLite and MySQL: empty fields and MySQL
    zero dates become NULL, any other text is kept byte for byte, and a value a later stage
    cannot hold (a zero-in-date, a NUL, a string over its length, a number out of range, a row
    cut short, a duplicate key) is refused with one line naming file, line, column and value.
    The folder loads all or nothing: after a refusal the source is as it was and the rerun needs
    no flag. Rows read and stored are reported per table.
    """
    pipeline.load_source(_settings(ctx), csv_dir, _reporter(), replace=replace, tables=list(tables))


@main.command()
@click.option("--hours", type=int, default=1, show_default=True, help="Simulated hours to apply.")
@click.option("--orders-per-hour", type=int, default=20, show_default=True, help="New orders per simulated hour.")
@click.pass_context
def simulate(ctx, hours, orders_per_hour) -> None:
    """Apply simulated hours of shop activity to the source: new orders and status changes."""
    from olist_demo.run import simulate as run_simulate

    run_simulate(_settings(ctx), _reporter(), hours=hours, orders_per_hour=orders_per_hour)


@main.command()
@click.option(
    "--mode",
    type=click.Choice(pipeline.EXTRACT_MODES),
    default="auto",
    show_default=True,
    help="historical: every row; current: rows changed since the watermark minus the lookback; "
    "auto: historical for a table with no watermark yet, else current.",
)
@TABLES
@click.pass_context
def extract(ctx, mode, tables) -> None:
    """Extract tables from the source into the object store, one batch per table.

    Writes olist/<table>/<mode>/batch=<id>/part-*.parquet in the store, then _manifest.json
    last; advances the watermark (olist/<table>/_state.json) after the manifest. A historical
    extract reads DWH_EXTRACT_STREAMS (2) key ranges in parallel, each in pages of up to
    DWH_PAGE_ROWS (32768) rows. Settings: DWH_LOOKBACK_SECONDS (900), DWH_PART_ROWS (500000),
    DWH_BATCH_ROWS (16384, also the Parquet row group), DWH_PARQUET_COMPRESSION (snappy; it
    leaves CHAR(32+) id columns uncompressed, zstd compresses every column). For Redshift,
    DWH_REDSHIFT_SLICES (0: off) makes a historical batch a multiple of that many parts of 1 MB
    to DWH_COPY_PART_BYTES (256 MiB) compressed each, so COPY keeps every slice busy;
    incremental batches keep DWH_PART_ROWS. Several tables are extracted at once within
    DWH_MAX_MEMORY_MB (1024), each still one batch (a SQLite source: one at a time). A killed
    historical extract resumes from its last finished part on the next historical or auto
    extract.

    Each table's source columns are first compared with the declaration (DWH_SCHEMA_CHANGES):
    evolve (default) extracts new columns and widened types (one line each; `dwh schema diff`
    shows how to declare them) and stops a table whose column was dropped, renamed, narrowed or
    changed, or a widened column's value that does not fit the declared type (one line naming
    table, column, key, value, both types and the YAML line to declare); freeze stops a table for
    any change. A stopped table writes nothing.

    A table whose extract fails (a value a later stage cannot hold, named by table, column, key
    and value; a watermark later than the source clock; a damaged state file; a schema change
    the policy stops) keeps its watermark while the other tables go on; the command then exits 1
    naming every failure.

    DWH_CAPTURE (cursor): `binlog` reads MySQL/MariaDB row events instead of polling the cursor.
    A historical extract then reads each table in one consistent snapshot and stores its
    binary-log position beside the watermark; auto/current read each table's inserts, updates
    and deletes (tombstones) from that position up to the log's end at the run's start, in commit
    order. A schema change of a table in the log stops that table (one line naming the
    statement) until it is re-extracted with --mode historical; a position the server has purged
    falls back to a historical extract (one line). The source needs binlog_format=ROW,
    binlog_row_image=FULL, binlog_row_metadata=FULL (docs/deploy.md).
    """
    pipeline.extract(_settings(ctx), _reporter(), mode, list(tables))


@main.command()
@TABLES
@click.pass_context
def load(ctx, tables) -> None:
    """Load every published batch not yet loaded into the raw tables, exactly once.

    Reads the batches under olist/<table>/ in the store (those with a _manifest.json). A batch
    loads by its manifest's columns: raw columns it lacks stay NULL, and columns raw lacks (a
    new source column, a newly declared one) are added, narrower raw columns widened. Each
    batch is staged, inserted (new row versions only) and recorded in raw._load_log and in the
    run history (raw._run_history) in one transaction; the run records that extract and funnel
    runs left in the store (state/runs/) are ingested first. Redshift: COPY ... FORMAT AS
    PARQUET MANIFEST with DWH_REDSHIFT_IAM_ROLE; a failed COPY names file, line, column and
    reason from stl_load_errors, or sys_load_error_detail on Serverless
    (DWH_REDSHIFT_SERVERLESS: auto, true, false). Then
    the funnel lake becomes readable as raw.funnel_events: a view over lake/funnel_events/ on
    DuckDB, a copy of newly converted files on PostgreSQL (Redshift reads it through Spectrum).

    Tables in parallel: on PostgreSQL up to 3 tables load at once, each on its own connection,
    within DWH_MAX_MEMORY_MB, largest first (the server works on each in its own backend);
    DuckDB (each statement already uses every core) and Redshift (each load transaction locks
    raw._load_log) load one table after another. Either way each table's batches load in
    order, one transaction each, and the lines come in table order.

    A batch whose parts or manifest do not check out, or that the warehouse refuses, is set
    aside: nothing of it is loaded, its table's later batches wait, the other tables load, the
    command exits 1 naming it, and every later load tries it again (see `dwh batches`).
    One load, build or run at a time per warehouse: another one waits up to
    DWH_LOCK_WAIT_SECONDS (60), then prints "another run holds the warehouse; skipped" and exits 0.
    """
    settings = _settings(ctx)
    _exclusive(settings, lambda: pipeline.load(settings, _reporter(), list(tables)))


@main.group()
def schema() -> None:
    """Source schema drift: what changed in the source against the declarations."""


@schema.command("diff")
@TABLES
@click.pass_context
def schema_diff(ctx, tables) -> None:
    """Compare each source table's columns with models/staging/olist/_olist__sources.yml.

    \b
    One line per change (+ added, - missing, ~ widened, ! narrowed or changed) with what an
    extract does with it under DWH_SCHEMA_CHANGES:
      evolve (default)  new columns are extracted into raw (nullable) and widened types widen
                        the raw column; a missing (dropped or renamed), narrowed or changed
                        column stops that table's extract, the other tables go on
      freeze            any change stops that table's extract
    For a new or widened column it prints the YAML line that declares it, the staging line
    that exposes it and the dbt commands that rebuild staging: nothing reaches staging or the
    marts until a person declares it. Reads the source's catalog only; changes nothing.
    """
    pipeline.schema_diff(_settings(ctx), _reporter(), list(tables))


@main.command()
@TABLES
@click.option("--repair", is_flag=True, help="Write a repair batch for every difference, load, build, verify again.")
@click.option("--examples", type=int, default=5, show_default=True, help="Example keys shown per kind of difference.")
@click.pass_context
def verify(ctx, tables, repair, examples) -> None:
    """Compare each table between the source and the warehouse's latest versions (a data diff).

    The keys are split into buckets by the first hex digits of their MD5 (about 32 rows per
    bucket, at most 65,536 buckets); one grouped query per side, both sides at once, gives each
    bucket's row count and an order-independent checksum of the declared columns (the same
    MD5-based row hash on every engine); a second query per side fetches keys and row hashes of
    the differing buckets only, so an equal table costs one scan of the source and 0.1% of rows
    changed about two (docs/verify.md, BENCHMARKS.md). Prints per table the rows in the
    source and the warehouse, missing (in the source only), extra (deleted in the source) and
    changed keys with examples, the time and the bytes read; rows changed after the last
    extract's upper bound are in flight, not differences. Results go to raw._verify_log (shown
    by `dwh status`) and the run history. --repair writes the current source rows of missing and
    changed keys and tombstones for extra keys as a repair batch, loads and builds it, and
    verifies again. Exit status 0 when every table is equal, 1 otherwise.
    """
    diffs = pipeline.verify(_settings(ctx), _reporter(), list(tables), repair, examples)
    ctx.exit(0 if all(d.equal for d in diffs) else 1)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def build(ctx, dbt_args) -> None:
    """Check source freshness, then run `dbt build` on the warehouse.

    Only what is downstream of the batches loaded (and funnel files converted) since the last
    successful build runs; nothing new, no build. The first build, `--full-refresh`,
    DWH_BUILD_SCOPE=all or an explicit `--select` build the whole project or that selection.
    Extra arguments go to dbt build, e.g. `--select staging` or `--full-refresh`. A stale raw
    table (no orders loaded for 12 hours), a failing test or a broken contract stops the build;
    everything downstream of a failing gate is skipped, so the BI views keep their last good state.
    Waits for (or skips on) another load, build or run like `dwh load`. Data tests on incremental
    models and raw tables read only the rows loaded since the last build (minus lookback_hours);
    every test reads whole tables on a whole build: the first, --full-refresh, DWH_BUILD_SCOPE=all,
    an explicit selection, and at least every DWH_FULL_TESTS_HOURS (24).
    """
    settings = _settings(ctx)
    _exclusive(settings, lambda: pipeline.build(settings, _reporter(), list(dbt_args)))


@main.group()
def funnel() -> None:
    """The funnel (clickstream) lake: generate, land and convert the vendor's CSV files."""


@funnel.command("generate")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for <year>_funnel.csv files.")
@click.option(
    "--olist-csv",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="Folder of the Olist CSVs whose customer_ids and product_ids the events use.",
)
@click.option("--scale", type=float, default=1.0, show_default=True, help="10,000 rows per file at scale 1.")
@click.option("--rows-per-file", type=int, help="Exact rows per file (overrides --scale; 7.5M rows make 1 GB).")
@click.option("--years", default="2016,2017,2018", show_default=True, help="One file per year.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_context
def funnel_generate(ctx, out, olist_csv, scale, rows_per_file, years, seed) -> None:
    """Write funnel files in the vendor's format (CRLF, 12-hour timestamps, empty categories)."""
    year_list = tuple(int(y) for y in years.split(",") if y.strip())
    from olist_demo.run import funnel_generate as run_funnel_generate

    run_funnel_generate(
        _settings(ctx, scale=scale, seed=seed),
        _reporter(),
        out,
        olist_csv,
        rows_per_file=rows_per_file,
        years=year_list,
    )


@funnel.command("land")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.pass_context
def funnel_land(ctx, files) -> None:
    """Copy local funnel CSV files into the store's landing area (landing/funnel/)."""
    pipeline.funnel_land(_settings(ctx), _reporter(), list(files))


@funnel.command("convert")
@click.option(
    "--file",
    "file",
    metavar="NAME",
    help="Only this landing file: a name, a key (landing/funnel/x.csv) or a full URI, as the "
    "S3 trigger passes it. Default: every new or changed landing file.",
)
@click.option("--force", is_flag=True, help="Convert again even if the file is unchanged.")
@click.pass_context
def funnel_convert(ctx, file, force) -> None:
    """Convert landing files to Parquet partitioned by year and month, idempotently.

    The columns, types, lengths and checks come from models/staging/funnel/_funnel__sources.yml.
    Writes, in the store, lake/funnel_events/year=<y>/month=<m>/<stem>.parquet (<stem>: the
    file's name without .csv; a re-run replaces its own output), rejects to
    rejects/funnel/<stem>.csv with line numbers and reasons (too_long_<column> for a value
    longer than declared), and the marker state/funnel/<stem>.json (size, SHA-256,
    converted_at, published_at); with DWH_GLUE_DATABASE set, it registers the new partitions in
    the Glue Data Catalog. Empty lines are not rows. A file whose marker shows the same key,
    size and SHA-256 is skipped (see --force); a changed file, even of the same size, is
    converted again. A file fails, writing nothing to the lake, above
    DWH_FUNNEL_MAX_REJECT_RATIO (0.01) rejected rows, or if it is not a funnel file; the other
    files still convert, and the command then exits with status 1.
    """
    pipeline.funnel_convert(_settings(ctx), _reporter(), file, force)


@main.command()
@click.pass_context
def docs(ctx) -> None:
    """Generate the dbt docs site as one HTML file (data/dbt/target/static_index.html).

    Every model and column is described; the lineage graph runs from the raw sources through
    staging, intermediate and marts to the QuickSight views and their dashboards (exposures).
    Needs a built warehouse (`dwh demo` or `dwh build` first).
    """
    pipeline.docs(_settings(ctx), _reporter())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the tables (for machines).")
@click.pass_context
def status(ctx, as_json) -> None:
    """Whether the warehouse is current, what the last runs did and what failed.

    \b
    Per declared table: the watermark and its lag behind the source clock, the last successful
    extract, load and build, batches published but not loaded, failed or set-aside batches, the
    source freshness verdict (the rules of the sources YAML) and the last verify. Per funnel
    file: converted or not, rows, rejects, the last conversion. Reads the run history
    (raw._run_history) with the warehouse opened read-only.

    \b
    Exit status: 0 all current; 3 late (a freshness rule warns or errors); 4 failed (a unit's
    last run failed, was set aside or never finished, or a failed batch is still not loaded);
    1 a user error (no warehouse yet, an unreachable one).
    """
    from .status import collect, render_json, render_text

    result = collect(_settings(ctx))
    if as_json:
        click.echo(render_json(result))
    else:
        render_text(result)
    ctx.exit(result.exit_status)


@main.command()
@click.option("--retry", is_flag=True, help="Load the tables of the listed batches now (dwh load for those tables).")
@click.pass_context
def batches(ctx, retry) -> None:
    """List the batches a load set aside or failed on that are still not loaded.

    \b
    A batch the warehouse refuses, or whose parts or manifest do not check out, is set aside:
    nothing of it is loaded, the later batches of its table wait, the other tables go on, and
    the run history (raw._run_history) keeps the reason. Every `dwh load` and `dwh run` tries
    it again; --retry does it now, after the cause is fixed. Exit status: 0 none left, 4 some
    still not loaded (as `dwh status`).
    """
    from .setaside import set_aside_batches
    from .status import EXIT_FAILED, EXIT_OK

    settings = _settings(ctx)
    found = set_aside_batches(settings)
    if retry and found:
        try:
            pipeline.load(settings, _reporter(), sorted({b.table for b in found}))
        except USER_ERRORS as exc:  # the summary below says what is still set aside
            click.echo(f"error: {exc}", err=True)
        found = set_aside_batches(settings)
        click.echo("")
    for b in found:
        when = b.failed_at.strftime("%Y-%m-%d %H:%M") if b.failed_at else "?"
        verb = "set aside" if b.status == "set_aside" else "failed"
        gone = "" if b.published else " (no longer in the store)"
        click.echo(f"{b.table:<34} batch {b.batch_id}{gone}: {verb} {when} UTC: {b.error or '?'}")
    click.echo(f"{len(found)} batch(es) set aside, not loaded" if found else "no batch set aside")
    ctx.exit(EXIT_FAILED if found else EXIT_OK)


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the page. [default: dashboard.html in the data folder]",
)
@click.pass_context
def dashboard(ctx, out) -> None:
    """Write the BI views and the pipeline's health as one static HTML page.

    Charts (Plotly, its JavaScript inlined: the page opens offline, no server): sales by
    category and year, monthly revenue and orders, delivery performance by state, the seller
    scorecard, funnel conversion by category and month, funnel customer activity; and from the
    run history, each table's lag, rows per run and the failed or unfinished units. The
    warehouse is opened read-only and closed before the page is written. `dwh run` and
    `dwh demo` write it after their build; the dbt docs site links to it (exposure
    pipeline_dashboard).
    """
    pipeline.dashboard(_settings(ctx), _reporter(), out)


@main.command()
@TABLES
@click.pass_context
def run(ctx, tables) -> None:
    """One scheduled run: remove old litter, convert new funnel files, extract (auto mode), load,
    dbt build, a verify-and-repair when due, and write the dashboard (data/dashboard.html).

    DWH_VERIFY_EVERY (24h, the default; 0 never) runs `dwh verify --repair` of the tables
    when the last verify is older than that, and after a historical extract; its cost (time,
    bytes read from the source) is printed.

    \b
    A failed funnel file, table extract or set-aside batch costs only itself: every stage runs,
    the build takes what did load, and the run exits 1 with one line naming every failure.
    Overlap: a run waits up to DWH_LOCK_WAIT_SECONDS (60) for another load, build or run on the
    same warehouse, then prints "another run holds the warehouse; skipped" and exits 0.
    Litter: unpublished batch folders and funnel temporary files older than
    DWH_LITTER_AGE_HOURS (6) that killed runs left are removed and counted; a batch being written
    or resumed is never touched.
    """
    settings = _settings(ctx)
    _exclusive(settings, lambda: pipeline.run(settings, _reporter(), list(tables)))


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("dist/aws"),
    show_default=True,
    help="Folder for the artifacts; copy it to s3://<ArtifactBucket>/<ArtifactPrefix>/.",
)
def package(out) -> None:
    """Build the AWS artifacts that infra/template.yaml deploys.

    \b
    lambda/trigger-<hash>.zip     the S3/schedule trigger function (boto3 only)
    glue/loaders-<hash>.zip       this package, for the Glue jobs (--extra-py-files)
    glue/dbt_project-<hash>.zip   the dbt project the load job builds
    glue/jobs/<job>.py            the extract, load and funnel job scripts
    glue/requirements.txt         the pinned packages the Glue jobs install
    parameters.txt                Key=Value overrides for `aws cloudformation deploy`

    The deployment guide (docs/deploy.md) shows the upload and deploy commands.
    """
    from .aws.package import build as build_artifacts

    artifacts = build_artifacts(out)
    for role, rel in artifacts.files.items():
        size = (artifacts.out / rel).stat().st_size
        click.echo(f"  {role:<12} {artifacts.out / rel}  ({size / 1e3:.1f} kB)")
    click.echo(f"  parameters   {artifacts.out / 'parameters.txt'}")


@main.command("settings")
@click.pass_context
def show_settings(ctx) -> None:
    """Print the effective settings (secrets hidden) and their environment variables."""
    for name, value in _settings(ctx).describe().items():
        click.echo(f"DWH_{name.upper():<24} {value}")


if __name__ == "__main__":  # pragma: no cover
    main()
