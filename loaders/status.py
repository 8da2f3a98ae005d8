"""`dwh status`: is the warehouse current, what did the last runs do, what failed (contract 14).

Read from the run history (`raw._run_history`, loaders/history.py) and the records the store
still holds, the load log, the store (watermarks, published batches, funnel markers), the
source's clock and the declared freshness rules. Per declared table: its watermark and how far
it lags behind the source clock, the last successful extract, load and build, the batches
published but not loaded, the batches that failed or were set aside and are still not loaded,
the source freshness verdict (dbt's rule, computed the way `dbt source freshness` does) and the
last verify. Per funnel file: converted or not, rows and rejects, the last conversion run.

The warehouse is opened read-only and closed before anything is printed. The exit status says
what a cron job or a health check needs to know: `EXIT_OK` (0), `EXIT_LATE` (3: a freshness
rule warns or errors), `EXIT_FAILED` (4: a unit's last run failed, was set aside or never
finished, or a failed batch is still not loaded; it wins over late). User errors keep status 1.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from . import layout
from .config import Settings
from .declarations import declared_tables, freshness_rules
from .history import UNFINISHED_AFTER, as_row, has_history, latest_units, store_records, unit_summary
from .load import list_batches
from .runs import utcnow
from .store import ObjectStore
from .warehouses import LOAD_LOG, Warehouse, literal, open_warehouse, quote

log = logging.getLogger("loaders.status")

EXIT_OK, EXIT_LATE, EXIT_FAILED = 0, 3, 4
VERIFY_LOG = "_verify_log"
"""Written by `dwh verify` (contract 10), read here when it exists: the latest row per table, by
its table column (`table_name`), time column (`verified_at`, or `finished_at`/`checked_at`/
`started_at`) and result column (`status`, or `result`/`verdict`/`outcome`)."""
SUCCESS = ("succeeded", "skipped")


@dataclass
class TableStatus:
    table: str
    watermark: datetime | None = None
    lag_minutes: float | None = None  # source clock minus watermark
    last_extract: datetime | None = None  # when the last successful extract ended
    last_load: datetime | None = None
    last_build: datetime | None = None
    built: bool = True  # no batch loaded since the last successful build started
    pending_batches: list[str] = field(default_factory=list)  # published, not loaded, not failed
    failed_batches: list[str] = field(default_factory=list)  # failed or set aside, still not loaded
    freshness: str = "-"  # pass | warn | error | - (no rule)
    newest_loaded_at: datetime | None = None
    last_verify: str = "never"
    last_verify_at: datetime | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class FunnelFileStatus:
    file: str
    converted: bool = False
    converted_at: datetime | None = None
    rows_written: int = 0
    rows_rejected: int = 0
    last_run: str = "-"
    problems: list[str] = field(default_factory=list)


@dataclass
class Status:
    checked_at: datetime
    warehouse: str
    source_clock: datetime | None
    tables: list[TableStatus] = field(default_factory=list)
    funnel_files: list[FunnelFileStatus] = field(default_factory=list)
    last_build: datetime | None = None
    problems: list[str] = field(default_factory=list)  # beyond one table or file (build, source load)
    late: bool = False
    failed: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "failed" if self.failed else "late" if self.late else "ok"

    @property
    def exit_status(self) -> int:
        return EXIT_FAILED if self.failed else EXIT_LATE if self.late else EXIT_OK

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["state"], doc["exit_status"] = self.state, self.exit_status
        return doc


def collect(settings: Settings, now: datetime | None = None) -> Status:
    """Everything `dwh status` shows. `now` (naive UTC) is the moment the ages are measured at."""
    now = now or utcnow()
    store = ObjectStore(settings.store_url, settings)
    source_clock, note = _source_clock(settings)
    status = Status(now, settings.warehouse, source_clock)
    if note:
        status.notes.append(note)
    tables = declared_tables(settings.project_dir)
    with open_warehouse(settings, store, read_only=True) as wh:
        rows = latest_units(wh) if has_history(wh) else []
        summary = unit_summary(wh) if has_history(wh) else {}
        failed_rows = _failed_batch_rows(wh) if has_history(wh) else []
        loaded = _loaded_batches(wh)
        newest = {name: _newest_loaded(wh, name, rule.loaded_at_field) for name, rule in _rules(settings).items()}
        verified = _last_verify(wh)
    waiting = list(store_records(store).values())  # records the next load has not ingested yet
    latest = _merge_latest(rows, [as_row(o) for o in waiting])
    for o in waiting:
        if o.status in SUCCESS and o.finished_at:
            key = (o.stage, o.unit)
            previous = summary.get(key, {}).get("success")
            if previous is None or o.finished_at > previous:
                summary.setdefault(key, {})["success"] = o.finished_at
    build = summary.get(("build", "dbt build"), {})
    status.last_build = build.get("success")
    build_started = build.get("success_started")

    published = {name: dict(list_batches(store, table)) for name, table in tables.items()}
    failed_ids: dict[str, list[str]] = {}
    for row in failed_rows:
        for batch_id in str(row["batch_ids"]).split():
            if batch_id in loaded or not layout.BATCH_ID.match(batch_id):
                continue
            owner = next((n for n, ids in published.items() if batch_id in ids), row["unit_name"])
            failed_ids.setdefault(owner, [])
            if batch_id not in failed_ids[owner]:
                failed_ids[owner].append(batch_id)

    rules = _rules(settings)
    for name, table in tables.items():
        t = TableStatus(name)
        try:
            t.watermark = _watermark(store, table)
        except Exception as exc:  # a damaged state file (loaders/extract/watermark.py names it)
            t.problems.append(f"state {exc}")
            status.failed = True
        clock = source_clock or now
        t.lag_minutes = round((clock - t.watermark).total_seconds() / 60, 1) if t.watermark else None
        t.last_extract = summary.get(("extract", name), {}).get("success")
        t.last_load = summary.get(("load", name), {}).get("success")
        t.last_build = status.last_build
        loaded_last = summary.get(("load", name), {}).get("succeeded")
        t.built = loaded_last is None or (build_started is not None and build_started >= loaded_last)
        t.failed_batches = failed_ids.get(name, [])
        t.pending_batches = [b for b in published[name] if b not in loaded and b not in t.failed_batches]
        if name in rules:
            t.newest_loaded_at = newest.get(name)
            age = now - t.newest_loaded_at if t.newest_loaded_at else None
            t.freshness = rules[name].verdict(age)
            if t.freshness != "pass":
                status.late = True
                limit = rules[name].error_after if t.freshness == "error" else rules[name].warn_after
                t.problems.append(
                    f"late: newest row loaded {_ago(age)} ({t.freshness} after {_duration(limit)})"
                    if age is not None
                    else "late: no row loaded yet"
                )
        t.last_verify, t.last_verify_at = verified.get(name, ("never", None))
        for stage in ("extract", "load", "verify"):
            problem = _unit_problem(latest.get((stage, name)), now)
            if problem:
                t.problems.append(f"{stage} {problem}")
                status.failed = True
        if t.failed_batches:
            status.failed = True
            t.problems.append(f"{len(t.failed_batches)} failed or set-aside batch(es) not loaded")
        status.tables.append(t)

    status.funnel_files = _funnel_files(store, latest, now)
    status.failed = status.failed or any(f.problems for f in status.funnel_files)
    for (stage, unit), row in sorted(latest.items()):
        if stage in ("build", "source_load"):
            problem = _unit_problem(row, now)
            if problem:
                status.problems.append(f"{stage} {unit}: {problem}")
                status.failed = True
    return status


def _rules(settings: Settings):
    return freshness_rules(settings.project_dir)


def _source_clock(settings: Settings) -> tuple[datetime | None, str | None]:
    from .sources import open_source

    try:
        with open_source(settings.source_url) as engine:
            return engine.now(), None
    except Exception as exc:
        return None, f"source clock unavailable ({type(exc).__name__}): lag measured against this machine's UTC clock"


def _watermark(store: ObjectStore, table) -> datetime | None:
    from .extract import read_watermark

    return read_watermark(store, table)


def _loaded_batches(wh: Warehouse) -> set[str]:
    if not wh.has_table(LOAD_LOG):
        return set()
    return {r[0] for r in wh.execute(f"SELECT batch_id FROM {wh.raw_name(LOAD_LOG)}")}


def _failed_batch_rows(wh: Warehouse) -> list[dict[str, Any]]:
    from .history import failed_batches

    return failed_batches(wh)


def _newest_loaded(wh: Warehouse, table: str, column: str) -> datetime | None:
    if not wh.has_table(table):
        return None
    rows = wh.execute(f"SELECT max({quote(column)}) FROM {wh.raw_name(table)}")
    return rows[0][0] if rows else None


def _last_verify(wh: Warehouse) -> dict[str, tuple[str, datetime | None]]:
    """table -> (result, when) of its latest verify, from raw._verify_log when it exists."""
    if not wh.has_table(VERIFY_LOG):
        return {}
    columns = [
        r[0].lower()
        for r in wh.execute(
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = {literal(wh.schema)} AND table_name = {literal(VERIFY_LOG)}"
        )
    ]
    pick = lambda *names: next((n for n in names if n in columns), None)
    table_col = pick("table_name", "table")
    time_col = pick("verified_at", "finished_at", "checked_at", "started_at")
    result_col = pick("status", "result", "verdict", "outcome")
    if not (table_col and time_col and result_col):
        log.warning("%s has no recognisable table, time and result columns: %s", VERIFY_LOG, columns)
        return {}
    name = wh.raw_name(VERIFY_LOG)
    rows = wh.execute(
        f"SELECT v.{quote(table_col)}, v.{quote(result_col)}, v.{quote(time_col)} FROM {name} AS v INNER JOIN ("
        f"SELECT {quote(table_col)} AS t, max({quote(time_col)}) AS at FROM {name} GROUP BY {quote(table_col)}"
        f") AS latest ON v.{quote(table_col)} = latest.t AND v.{quote(time_col)} = latest.at"
    )
    return {str(r[0]): (str(r[1]), r[2]) for r in rows}


def _merge_latest(*row_lists: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for rows in row_lists:
        for row in rows:
            key = (row["stage"], row["unit_name"])
            if key not in latest or row["started_at"] >= latest[key]["started_at"]:
                latest[key] = row
    return latest


def _unit_problem(row: dict[str, Any] | None, now: datetime) -> str | None:
    """What is wrong with a unit's last run, if anything."""
    if row is None:
        return None
    if row["status"] in ("failed", "set_aside"):
        verb = "failed" if row["status"] == "failed" else "set aside"
        return f"{verb} {_ago(now - (row['finished_at'] or row['started_at']))}: {row['error_message'] or '?'}"
    if row["status"] == "running" and now - row["started_at"] > UNFINISHED_AFTER:
        return f"unfinished: started {_ago(now - row['started_at'])} and never ended (killed?)"
    return None


def _funnel_files(store: ObjectStore, latest: dict, now: datetime) -> list[FunnelFileStatus]:
    from .funnel import landing_files
    from .funnel.convert import output_stem

    out = []
    markers = {p.rsplit("/", 1)[-1][: -len(".json")]: p for p in store.glob(layout.funnel_markers_glob())}
    seen = set()
    for key in landing_files(store):
        name = key.rsplit("/", 1)[-1]
        stem = output_stem(name)
        seen.add(stem)
        f = FunnelFileStatus(name)
        marker = store.read_json(markers[stem]) if stem in markers else None
        size = store.info(key).size
        _fill_marker(f, marker)
        # by key and size only: `dwh status` reads no file; a same-size re-delivery shows as
        # converted until `dwh funnel convert` compares its SHA-256 with the marker's
        f.converted = marker is not None and marker.get("source") == key and marker.get("source_bytes") == size
        row = latest.get(("funnel_convert", name))
        if row is not None:
            f.last_run = row["status"]
            problem = _unit_problem(row, now)
            if problem:
                f.problems.append(f"conversion {problem}")
        out.append(f)
    for stem, path in sorted(markers.items()):  # converted files whose landing file is gone
        if stem not in seen:
            marker = store.read_json(path)
            f = FunnelFileStatus(str(marker.get("source", stem)).rsplit("/", 1)[-1], converted=True)
            _fill_marker(f, marker)
            out.append(f)
    return out


def _fill_marker(f: FunnelFileStatus, marker: dict | None) -> None:
    if not marker:
        return
    f.converted_at = datetime.fromisoformat(marker["converted_at"]) if marker.get("converted_at") else None
    f.rows_written = int(marker.get("rows_written") or 0)
    f.rows_rejected = sum(int(n) for n in (marker.get("rejects") or {}).values())


# -- display -----------------------------------------------------------------------------------
def _ago(age: timedelta | None) -> str:
    if age is None:
        return "-"
    minutes = age.total_seconds() / 60
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes:.0f}m ago"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f}h ago"
    return f"{minutes / 1440:.0f}d ago"


def _duration(d: timedelta | None) -> str:
    if d is None:
        return "-"
    minutes = d.total_seconds() / 60
    return (
        f"{minutes:.0f}m" if minutes < 120 else f"{minutes / 60:.0f}h" if minutes < 2880 else f"{minutes / 1440:.0f}d"
    )


def _when(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else _ago(now - moment)


def render_text(status: Status, out: IO[str] | None = None, width: int | None = None) -> None:
    """The human view: a table per declared table, one per funnel file, then the problems."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    stream = out or sys.stdout
    tty = stream.isatty()
    # a terminal gets its own width and colours; a pipe or a cron log every column, plain
    buffer = stream if tty else io.StringIO()
    console = Console(file=buffer, width=width or (None if tty else 160), highlight=False, soft_wrap=False)
    now = status.checked_at
    clock = f"source clock {status.source_clock:%Y-%m-%d %H:%M:%S}" if status.source_clock else "source clock ?"
    console.print(f"dwh status at {now:%Y-%m-%d %H:%M:%S} UTC, warehouse {status.warehouse}, {clock}")
    for note in status.notes:
        console.print(f"note: {note}")
    tables = Table(title="tables", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (
        ("table", "left"),
        ("watermark", "left"),
        ("lag", "right"),
        ("extracted", "right"),
        ("loaded", "right"),
        ("built", "right"),
        ("pending", "right"),
        ("failed", "right"),
        ("freshness", "left"),
        ("verified", "left"),
    ):
        tables.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]  # literal justify names
    for t in status.tables:
        style = "red" if t.failed_batches or any("failed" in p or "unfinished" in p for p in t.problems) else None
        style = style or ("yellow" if t.freshness in ("warn", "error") else None)
        tables.add_row(
            t.table,
            f"{t.watermark:%Y-%m-%d %H:%M}" if t.watermark else "-",
            _duration(timedelta(minutes=t.lag_minutes)) if t.lag_minutes is not None else "-",
            _when(t.last_extract, now),
            _when(t.last_load, now),
            _when(t.last_build, now) if t.built else "not since load",
            str(len(t.pending_batches)),
            str(len(t.failed_batches)),
            t.freshness,
            t.last_verify if t.last_verify_at is None else f"{t.last_verify} {_when(t.last_verify_at, now)}",
            style=style,
        )
    console.print()
    console.print(tables)
    if status.funnel_files:
        files = Table(title="funnel files", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for name in ("file", "converted", "rows", "rejected", "last run"):
            files.add_column(name, justify="left" if name in ("file", "converted", "last run") else "right")
        for f in status.funnel_files:
            files.add_row(
                f.file,
                _when(f.converted_at, now) if f.converted else "no",
                f"{f.rows_written:,}",
                f"{f.rows_rejected:,}",
                f.last_run,
                style="red" if f.problems else None,
            )
        console.print()
        console.print(files)
    problems = [f"{t.table}: {p}" for t in status.tables for p in t.problems]
    problems += [f"{f.file}: {p}" for f in status.funnel_files for p in f.problems]
    problems += status.problems
    console.print()
    for line in problems:
        console.print(f"  {line}", markup=False, soft_wrap=True)  # one line each, however long
    console.print(f"{status.state} (exit status {status.exit_status})")
    if isinstance(buffer, io.StringIO):
        stream.write("\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n")


def render_json(status: Status) -> str:
    return json.dumps(status.as_json(), default=_json_default, indent=2)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
