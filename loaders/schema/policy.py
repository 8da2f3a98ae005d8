"""The schema policy, `DWH_SCHEMA_CHANGES` (docs/architecture.md, contract 12).

Every extract compares the source table with its declaration before reading it (diff.py) and
decides, per change:

============  =========================================  ==========================
change        evolve (default)                           freeze
============  =========================================  ==========================
added         extracted; the load adds a nullable raw    stops the table
              column (not in staging until declared)
widened       extracted with the source type; the load   stops the table
              widens the raw column; a value that does
              not fit the declared type stops the table
missing       stops the table (dropped or renamed)       stops the table
narrowed      stops the table                            stops the table
changed       stops the table                            stops the table
============  =========================================  ==========================

A widened column is read with the source's type (so that raw is widened and ready when a person
declares it) but every value is checked against the DECLARED type, as the extract checks every
value (loaders/extract/values.py): staging casts to the declared type, so a value that does not
fit it would fail the build (DuckDB), be cut (PostgreSQL and Redshift cut a string cast to a
shorter VARCHAR) or be rounded (a DECIMAL with more fraction digits). Such a value stops the
table's extract with one line (`value_stop_line`); the values that fit flow normally.

A stopped table writes nothing (no batch, the watermark stays); the other tables go on. A change
of a table that is extracted is one line in the run's output and one unit (stage `schema`) in the
run history; a table that stops is one line and one failed `extract` unit, whose message is the
stopping change's line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ..config import SchemaChanges
from ..declarations import Table
from ..sources import SourceEngine
from .diff import Change, diff_table, effective_columns
from .inspect import source_columns

Action = Literal["evolve", "ignore", "stop"]
SOURCES_YAML = "models/staging/olist/_olist__sources.yml"


class SchemaChangeError(RuntimeError):
    """A schema change stopped a table's extract; the message is the change's one line."""

    def __init__(self, message: str, plan: SchemaPlan | None = None):
        super().__init__(message)
        self.plan = plan


@dataclass(frozen=True)
class Decision:
    """What the policy does with one change, and the change's one line for people."""

    change: Change
    action: Action
    line: str


@dataclass(frozen=True)
class SchemaPlan:
    """The outcome of the check of one table: the table to extract (declared columns with
    widened types, then new columns) and a decision per change."""

    declared: Table
    table: Table
    decisions: tuple[Decision, ...]

    @property
    def stops(self) -> list[Decision]:
        return [d for d in self.decisions if d.action == "stop"]

    @property
    def widened(self) -> list[Change]:
        """The widened columns the extract reads with the source's type (their values are still
        checked against the declared type: `value_stop_line`)."""
        return [d.change for d in self.decisions if d.action == "evolve" and d.change.kind == "widened"]

    @property
    def lines(self) -> list[str]:
        return [d.line for d in self.decisions]

    def stop_message(self) -> str | None:
        """The one line of a stopped extract: the first stopping change, and how many more."""
        stops = self.stops
        if not stops:
            return None
        more = f" (+{len(stops) - 1} more schema change(s) stop it: dwh schema diff)" if len(stops) > 1 else ""
        return stops[0].line + more


def yaml_line(change: Change) -> str:
    """The declaration of a column with the source's type, as a line of SOURCES_YAML
    (`- {name: price, data_type: "decimal(12,2)", ...}`; keep the rest of the existing line)."""
    return f'- {{name: {change.column}, data_type: "{change.new}", ...}}'


def value_stop_line(change: Change, key: str, value: object) -> str:
    """The one line of an extract stopped by a value of a widened column that does not fit the
    declared type: table, column, key (`name='value', ...`), value, both types, and the fix."""
    t = change.table
    shown = repr(value[:60] + "..." if len(value) > 60 else value) if isinstance(value, str) else str(value)
    return (
        f"table {t!r}, column {change.column!r}, key ({key}): {shown} does not fit the declared {change.old} "
        f"(the source widened the column to {change.new}): extract of {t!r} stopped, nothing written; declare the "
        f"wider type in {SOURCES_YAML}, table {t}: `{yaml_line(change)}` (every step: `dwh schema diff --table "
        f"{t}`), or fix the row in the source: the next run extracts it again"
    )


def _decide(change: Change, changes: list[Change], policy: SchemaChanges) -> Decision:
    t, col = change.table, change.column
    diff_hint = f"`dwh schema diff --table {t}`"
    if policy == "freeze" and change.kind in ("added", "widened"):
        return Decision(
            change,
            "stop",
            f"{change.describe()}: extract of {t!r} stopped (DWH_SCHEMA_CHANGES=freeze); declare it as "
            f"{diff_hint} shows, or set DWH_SCHEMA_CHANGES=evolve",
        )
    if change.kind == "added" and (change.source is None or change.source.logical is None):
        return Decision(change, "ignore", f"{change.describe()}: not extracted, no warehouse type holds {change.new}")
    if change.kind == "added":
        return Decision(
            change,
            "evolve",
            f"{change.describe()}: extracted into raw.{t} (nullable {change.new}); declare it to use it: {diff_hint}",
        )
    if change.kind == "widened":
        return Decision(
            change,
            "evolve",
            f"{change.describe()}: extracted as {change.new} (values that do not fit {change.old} stop the "
            f"table), raw.{t}.{col} is widened at the next load; declare {change.new} to use it in staging: "
            f"{diff_hint}",
        )
    if change.kind == "missing":
        added = [c.column for c in changes if c.kind == "added"]
        rename = (
            f" (dropped, or renamed to {' or '.join(map(repr, added))}: a rename shows as a drop plus a new column)"
            if added
            else " (dropped or renamed)"
        )
        return Decision(
            change,
            "stop",
            f"{change.describe()}{rename}: extract of {t!r} stopped; restore the column in the source, or remove it "
            f"from {SOURCES_YAML} and stg_olist__{t}.sql (raw keeps it, NULL from then on)",
        )
    if change.kind == "narrowed":
        return Decision(
            change,
            "stop",
            f"{change.describe()}: extract of {t!r} stopped; restore {change.old} in the source, or declare "
            f"{change.new} in {SOURCES_YAML} if the narrower type is meant (raw keeps {change.old})",
        )
    return Decision(
        change,
        "stop",
        f"{change.describe()}: extract of {t!r} stopped; restore {change.old} in the source (a column that "
        f"changes type is not migrated: declare it under a new name, or rebuild raw.{t} with a historical extract)",
    )


def plan_table(
    engine_name: str, table: Table, source: list, policy: SchemaChanges, cursor_optional: bool = False
) -> SchemaPlan:
    """The decisions for `table` given its `source` columns (inspect.SourceColumn).
    `cursor_optional` (binlog capture, contract 11): a source table without the declared cursor
    column is not a change; the capture fills the cursor with the snapshot's or the commit's time."""
    changes = diff_table(engine_name, table, source)
    if cursor_optional:
        changes = [c for c in changes if not (c.kind == "missing" and c.column == table.cursor)]
    decisions = tuple(_decide(c, changes, policy) for c in changes)
    if any(d.action == "stop" for d in decisions):  # nothing of this table is extracted this time
        decisions = tuple(
            d
            if d.action == "stop"
            else Decision(
                d.change, d.action, f"{d.change.describe()}: not extracted, the extract of {table.name!r} stops"
            )
            for d in decisions
        )
    evolving = [d.change for d in decisions if d.action == "evolve"]
    effective = replace(table, columns=effective_columns(table, evolving)) if evolving else table
    return SchemaPlan(table, effective, decisions)


def check_source_schema(
    engine: SourceEngine, table: Table, policy: SchemaChanges, cursor_optional: bool = False
) -> SchemaPlan:
    """Read the source table's columns and plan its extract (`cursor_optional`: see plan_table).
    Raises SourceError when the table is not in the source; the caller raises SchemaChangeError
    when `plan.stops`."""
    return plan_table(engine.name, table, source_columns(engine, table), policy, cursor_optional)
