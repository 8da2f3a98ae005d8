"""`dwh schema diff`: each table's schema changes, and the lines a person adds to take a new or
widened column all the way to a mart (README, "Schema changes").

dbt models stay explicit: a column appears in staging only once it is declared in the sources
YAML and selected by the staging model. The staging models are incremental tables with
`on_schema_change: fail`, so a staging model that gains a column (or a wider type) is rebuilt
once with `--full-refresh`.
"""

from __future__ import annotations

from ..declarations import Table
from .diff import Change
from .policy import SOURCES_YAML, SchemaPlan

MODELS_YAML = "models/staging/olist/_olist__models.yml"


def staging_model(table: str) -> str:
    return f"stg_olist__{table}"


def _added(table: Table, change: Change) -> list[str]:
    model = staging_model(table.name)
    last = table.column_names[-1]
    return [
        f"      1. declare it in {SOURCES_YAML}, source olist, table {table.name}, columns (after {last}):",
        f'          - {{name: {change.column}, data_type: "{change.new}", description: "..."}}',
        f"      2. expose it in models/staging/olist/{model}.sql, in the select list of `renamed`:",
        f"        {change.column},",
        f"      3. document it in {MODELS_YAML}, model {model}:",
        f'      - {{name: {change.column}, description: "..."}}',
        f"      4. dwh load; dwh build --full-refresh --select {model}; dwh build",
        "         (marts select their columns by name: add it to a mart's SQL and contract to publish it there)",
    ]


def _widened(table: Table, change: Change) -> list[str]:
    model = staging_model(table.name)
    return [
        f"      1. in {SOURCES_YAML}, table {table.name}, column {change.column}:",
        f'          data_type: "{change.new}"',
        f"      2. dwh load; dwh build --full-refresh --select {model}+",
        "         (a mart contract that lists the column with its type needs the new type too)",
    ]


def diff_lines(plan: SchemaPlan) -> list[str]:
    """The text `dwh schema diff` prints for one table: a header, one line per change with what
    the policy does, and for each added or widened column the lines to declare and expose it."""
    table = plan.declared
    if not plan.decisions:
        return [f"  {table.name}: as declared"]
    stops = " (its extract stops)" if plan.stops else ""
    out = [f"  {table.name}: {len(plan.decisions)} change(s){stops}"]
    marks = {"added": "+", "missing": "-", "widened": "~", "narrowed": "!", "changed": "!"}
    for d in plan.decisions:
        c = d.change
        out.append(f"    {marks[c.kind]} {d.line}")
        if c.kind == "added" and d.action != "ignore":
            out += _added(table, c)
        elif c.kind == "widened":
            out += _widened(table, c)
    return out
