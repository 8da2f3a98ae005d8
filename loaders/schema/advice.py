"""`dwh schema diff`: each table's schema changes, and the lines a person adds to take a new or
widened column all the way to a mart (README, "Schema changes").

dbt models stay explicit: a column appears in staging only once it is declared in the sources
YAML and selected by the staging model. The staging models are incremental tables with
`on_schema_change: fail`, so a staging model that gains a column (or a wider type) is rebuilt
once with `--full-refresh`.

A widened column keeps its declared type downstream until a person declares the wider one; then
every enforced mart contract that lists the column (by its staging name) with a narrower type
fails the build (dbt compares the model's column types with the contract): those lines are
printed too (`contract_changes`).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..declarations import LogicalType, Table
from .diff import Change, compare
from .policy import SOURCES_YAML, SchemaPlan, yaml_line

MODELS_YAML = "models/staging/olist/_olist__models.yml"
MARTS_YAML = "models/marts/_marts__models.yml"


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


def staging_name(project_dir: Path, table: str, column: str) -> str:
    """The name a source column has in its staging model (`product_weight_g as weight_g`)."""
    path = project_dir / "models" / "staging" / "olist" / f"{staging_model(table)}.sql"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    match = re.search(rf"^\s*{re.escape(column)}\s+as\s+(\w+)\s*,?\s*$", text, re.MULTILINE | re.IGNORECASE)
    return match[1] if match else column


def contract_type(text: str) -> LogicalType | None:
    """A mart contract's data_type (`integer`, `numeric(14, 2)`, `varchar` ...) as a logical type
    (None: not one that a source column's type relates to)."""
    t = re.sub(r"\s+", " ", text.strip().lower())
    numbers = [int(n) for n in re.findall(r"\d+", t)]
    base = t.split("(")[0].strip()
    if base in ("numeric", "decimal") and len(numbers) == 2:
        return LogicalType("decimal", numbers[0], numbers[1])
    if base in ("varchar", "character varying") and numbers:
        return LogicalType("varchar", numbers[0])
    kinds = {"varchar": "text", "text": "text", "character varying": "text", "string": "text", "integer": "integer"}
    kinds |= {"int": "integer", "int4": "integer", "bigint": "bigint", "int8": "bigint", "timestamp": "timestamp"}
    kinds |= {"double precision": "double", "double": "double", "float8": "double"}
    kind = kinds.get(base)
    return LogicalType(kind) if kind else None  # type: ignore[arg-type]  # the dict holds Kind names


def contract_spelling(t: LogicalType) -> str:
    """A logical type as the mart contracts spell it."""
    if t.is_string:
        return "varchar"
    return {"decimal": f"numeric({t.length}, {t.scale})", "double": "double precision"}.get(t.kind, t.kind)


def contract_changes(project_dir: Path, change: Change) -> list[tuple[str, str, str]]:
    """(model, column, contract type) of every enforced mart contract in MARTS_YAML that lists the
    widened column by its staging name with a type narrower than the source's new one."""
    path = project_dir / MARTS_YAML
    if change.source is None or change.source.logical is None or not path.exists():
        return []
    name = staging_name(project_dir, change.table, change.column)
    found = []
    for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or []:
        if not ((model.get("config") or {}).get("contract") or {}).get("enforced"):
            continue
        for col in model.get("columns") or []:
            if col.get("name") != name or not col.get("data_type"):
                continue
            listed = contract_type(str(col["data_type"]))
            if listed is not None and compare(listed, change.source.logical) == "widened":
                found.append((str(model["name"]), name, str(col["data_type"])))
    return found


def _widened(table: Table, change: Change, project_dir: Path | None) -> list[str]:
    model = staging_model(table.name)
    out = [
        f"      1. in {SOURCES_YAML}, table {table.name}, the line of column {change.column}:",
        f"          {yaml_line(change)}",
    ]
    contracts = contract_changes(project_dir, change) if project_dir is not None and change.source else []
    for mart, column, listed in contracts:
        wanted = contract_spelling(change.source.logical) if change.source and change.source.logical else change.new
        out += [
            f"      {len(out) // 2 + 1}. in {MARTS_YAML}, model {mart}, column {column} (its contract lists {listed}; "
            f"a cast to it in models/marts/{mart}.sql too):",
            f"          data_type: {wanted}",
        ]
    out += [
        f"      {len(out) // 2 + 1}. dwh extract; dwh load; dwh build --full-refresh --select {model}+",
        "         (the staging model and what reads it are rebuilt with the wider type)",
    ]
    return out


def diff_lines(plan: SchemaPlan, project_dir: Path | None = None) -> list[str]:
    """The text `dwh schema diff` prints for one table: a header, one line per change with what
    the policy does, and for each added or widened column the lines to declare and expose it
    (with `project_dir`, a widened column's mart contracts to change: contract_changes)."""
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
            out += _widened(table, c, project_dir)
    return out
