"""What a `dwh build` needs to run: the models downstream of what was loaded since the last build.

The load log says exactly which raw tables received rows and when (a batch that inserted none,
such as the empty batch of an hour without changes, does not count); the funnel's conversion
markers say when lake files were (re)converted. After a successful build, its start time goes
into `raw._build_log`. The next build selects `source:olist.<table>+` for every table with a batch
loaded since then, and `source:funnel.funnel_events+` when a funnel file was converted since then,
each minus the models' own lookback (`lookback_hours`), so a batch stamped just before a build
started but committed while it ran is not left behind. Models downstream of nothing new are not
run at all: their inputs did not change, so neither would they. A build with nothing new is
skipped.

Everything else builds the whole project: the first build (no build log yet), `--full-refresh`,
`DWH_BUILD_SCOPE=all`, and any explicit selection (`--select`, `--exclude`, ...), which is also
not recorded as a complete build. After changing models or seeds, build with
`DWH_BUILD_SCOPE=all` (or `dwh build --select <changed models>+`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from .. import layout
from ..config import Settings
from ..warehouses import LOAD_LOG, Warehouse, literal, quote

BUILD_LOG = "_build_log"
# dbt arguments that build part of the project (such a build is not recorded as complete) ...
PARTIAL_FLAGS = {
    "--select",
    "-s",
    "--models",
    "-m",
    "--exclude",
    "--selector",
    "--resource-type",
    "--exclude-resource-type",
}
# ... and those that choose what to build themselves (no selection is added)
SELECTING_FLAGS = PARTIAL_FLAGS | {"--full-refresh", "-f"}
OLIST_SOURCE = layout.SOURCE  # the dbt source of the declared tables
FUNNEL_SELECTOR = "source:funnel.funnel_events+"
WHOLE = "(all)"  # the selection recorded for a build of the whole project


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _flags(extra: list[str]) -> set[str]:
    return {arg.split("=", 1)[0] for arg in extra}


def is_explicit(extra: list[str]) -> bool:
    """Whether the dbt arguments choose what to build themselves."""
    return bool(_flags(extra) & SELECTING_FLAGS)


def is_partial(extra: list[str]) -> bool:
    """Whether the dbt arguments build only part of the project."""
    return bool(_flags(extra) & PARTIAL_FLAGS)


def lookback_hours(settings: Settings, extra: list[str]) -> float:
    """`lookback_hours` as this build sees it: from --vars, else dbt_project.yml."""
    for i, arg in enumerate(extra):
        raw = (
            extra[i + 1]
            if arg == "--vars" and i + 1 < len(extra)
            else (arg.split("=", 1)[1] if arg.startswith("--vars=") else None)
        )
        if raw is not None:
            value = (yaml.safe_load(raw) or {}).get("lookback_hours")
            if value is not None:
                return float(value)
    project = yaml.safe_load(Path(settings.project_dir, "dbt_project.yml").read_text())
    return float((project.get("vars") or {}).get("lookback_hours", 0))


def _ensure_log(wh: Warehouse) -> None:
    wh.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(wh.schema)}")
    wh.execute(
        f"CREATE TABLE IF NOT EXISTS {wh.raw_name(BUILD_LOG)} (\n"
        "    started_at TIMESTAMP NOT NULL,\n"
        "    finished_at TIMESTAMP NOT NULL,\n"
        "    selection VARCHAR(4096) NOT NULL\n"
        ")"
    )


def last_build(wh: Warehouse) -> datetime | None:
    _ensure_log(wh)
    rows = wh.execute(f"SELECT max(started_at) FROM {wh.raw_name(BUILD_LOG)}")
    return rows[0][0] if rows and rows[0][0] is not None else None


def record_build(wh: Warehouse, started_at: datetime, selection: list[str] | None) -> None:
    _ensure_log(wh)
    stamp = lambda t: f"CAST({literal(t.strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMP)"
    wh.execute(
        f"INSERT INTO {wh.raw_name(BUILD_LOG)} (started_at, finished_at, selection) VALUES "
        f"({stamp(started_at)}, {stamp(now())}, {literal(' '.join(selection or [WHOLE])[:4096])})"
    )


def changed_selectors(wh: Warehouse, since: datetime) -> list[str]:
    """dbt selectors for every source with data loaded or converted since `since`.

    Only a batch that inserted rows counts: an hourly extract writes a batch for every table,
    empty where nothing changed, and a lookback re-read holds versions raw already has (its
    `rows_inserted` is 0, tombstones included in the count); neither gives a model anything new.
    """
    rows = (
        wh.execute(
            f"SELECT DISTINCT table_name FROM {wh.raw_name(LOAD_LOG)} "
            f"WHERE loaded_at >= CAST({literal(since.strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMP) "
            "AND rows_inserted > 0 ORDER BY table_name"
        )
        if wh.has_table(LOAD_LOG)
        else []
    )
    selectors = [f"source:{OLIST_SOURCE}.{name}+" for (name,) in rows]
    for marker in wh.store.glob(layout.funnel_markers_glob()):
        doc = wh.store.read_json(marker)
        converted = doc.get("published_at") or doc.get("converted_at")  # when its files reached the lake
        if converted and datetime.fromisoformat(converted) >= since:
            selectors.append(FUNNEL_SELECTOR)
            break
    return selectors


def last_whole_build(wh: Warehouse) -> datetime | None:
    """When the last build of the whole project (with every test over whole tables) started."""
    _ensure_log(wh)
    rows = wh.execute(f"SELECT max(started_at) FROM {wh.raw_name(BUILD_LOG)} WHERE selection = {literal(WHOLE)}")
    return rows[0][0] if rows and rows[0][0] is not None else None


def plan(wh: Warehouse, settings: Settings, extra: list[str], scope: str) -> list[str] | None:
    """None: build everything. []: nothing new, no build. Else: the selectors to build.

    The whole project is also built, with every data test over whole tables, when the last such
    build is more than DWH_FULL_TESTS_HOURS old (the daily cadence of full-table tests;
    macros/tests/changed_rows.sql)."""
    if scope == "all" or is_explicit(extra):
        return None
    previous = last_build(wh)
    if previous is None:
        return None
    whole = last_whole_build(wh)
    if whole is None or now() - whole >= timedelta(hours=settings.full_tests_hours):
        return None
    return changed_selectors(wh, previous - timedelta(hours=lookback_hours(settings, extra)))


def with_vars(extra: list[str], values: Mapping[str, object]) -> list[str]:
    """The dbt arguments with `values` added to their --vars (merged into one given, if any)."""
    out = list(extra)
    for i, arg in enumerate(out):
        if arg == "--vars" and i + 1 < len(out):
            out[i + 1] = json.dumps({**(yaml.safe_load(out[i + 1]) or {}), **values})
            return out
        if arg.startswith("--vars="):
            out[i] = "--vars=" + json.dumps({**(yaml.safe_load(arg.split("=", 1)[1]) or {}), **values})
            return out
    return [*out, "--vars", json.dumps(values)]


FULL_TESTS = {"test_scope": "all"}
"""The dbt var that runs every data test over whole tables (macros/tests/changed_rows.sql)."""
