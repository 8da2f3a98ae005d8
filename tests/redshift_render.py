"""Every statement dbt-redshift would send for this project, rendered offline, and the rules it must meet.

Redshift cannot run here. dbt runs in-process on the redshift target exactly as `dwh build` runs it
(loaders.build.dbt_runner.run_dbt, `--no-populate-cache`), but `redshift_connector.connect` is
replaced by a recording stand-in: no network, every statement is kept with the node that sent it
(dbt puts `"node_id": ...` in the comment it prefixes to each query). The stand-in answers dbt's
catalog queries: a first pass sees an empty warehouse (schemas, seeds, CREATE TABLE ... DISTSTYLE /
SORTKEY, CREATE VIEW, Spectrum DDL through `run-operation setup_spectrum`); a second pass sees every
model present (incremental delete/insert through the project's strategy, the table swap with its
DROP ... CASCADE, view replacement). `problems()` then applies the checks (SQLFluff's redshift
dialect plus Redshift's own rules, see RULES).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlfluff

from loaders.build.dbt_runner import run_dbt
from loaders.config import Settings

NODE_ID = re.compile(r'"node_id": "([^"]+)"')
VARCHAR = 1043  # PostgreSQL/Redshift type OIDs, as redshift_connector reports them in cursor.description
INTEGER = 23
ROLE = "arn:aws:iam::123456789012:role/redshift-spectrum"
LAKE = "s3://dwh-bucket/dwh/lake/funnel_events/"


def _description(*names: str, code: int = VARCHAR) -> list[tuple]:
    return [(name, code, None, None, None, None, None) for name in names]


class _Cursor:
    def __init__(self, fake: RecordingRedshift):
        self.fake = fake
        self.description: list[tuple] | None = None
        self.rowcount = -1
        self._rows: list[tuple] = []

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> _Cursor:
        self.description, self._rows, self.rowcount = self.fake.answer(sql)
        return self

    def fetchall(self) -> list[tuple]:
        return self._rows

    def fetchmany(self, size: int) -> list[tuple]:
        return self._rows[:size]

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def close(self) -> None:
        pass

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Connection:
    def __init__(self, fake: RecordingRedshift):
        self.fake = fake
        self.autocommit = False

    def cursor(self) -> _Cursor:
        return _Cursor(self.fake)

    def commit(self) -> None:
        self.fake.record("COMMIT")

    def rollback(self) -> None:
        self.fake.record("ROLLBACK")

    def close(self) -> None:
        pass


@dataclass
class RecordingRedshift:
    """Stands in for redshift_connector: records statements, answers dbt's catalog queries.

    `existing` maps schema -> {relation name: 'table' | 'view'} that the catalog reports as present;
    `columns` maps a relation name -> its column names (answered for dbt's column query, also for
    the relation's `__dbt_tmp...` temporary table).
    """

    existing: dict[str, dict[str, str]] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    statements: list[tuple[str, str]] = field(default_factory=list)  # (node id or '', sql)

    def connect(self, **kwargs: Any) -> _Connection:
        return _Connection(self)

    def record(self, sql: str) -> None:
        # dbt prefixes its comment to the first statement of a multi-statement call only (a contract's
        # CREATE TABLE then INSERT): an uncommented statement belongs to the node before it (one thread)
        match = NODE_ID.search(sql)
        if match:
            node = match.group(1)
        elif "connection_name" in sql or not self.statements:
            node = ""
        else:
            node = self.statements[-1][0]
        self.statements.append((node, sql))

    def answer(self, sql: str) -> tuple[list[tuple] | None, list[tuple], int]:
        self.record(sql)
        if "pg_backend_pid()" in sql:
            return _description("pid", code=INTEGER), [(1,)], 1
        if "where false" in sql and "limit 0" in sql:
            # a contract check compares the model's query with its declared columns: both answered alike
            return _description("column"), [], 0
        listed = re.search(r"where table_schema ilike '([^']+)'", sql)
        if listed:
            schema = listed.group(1)
            listing: list[tuple] = [("dev", name, schema, kind) for name, kind in self.existing.get(schema, {}).items()]
            return _description("database", "name", "schema", "type"), listing, len(listing)
        asked = re.search(r"where table_name = '([^']+)'", sql)
        if asked:
            name = re.sub(r"__dbt_tmp.*$", "", asked.group(1))
            rows = [(c, "character varying", 256, None, None) for c in self.columns.get(name, [])]
            names = ("column_name", "data_type", "character_maximum_length", "numeric_precision", "numeric_scale")
            return _description(*names), rows, len(rows)
        if re.search(r"^\s*select cast\(min\(", sql, re.M):
            # macros/incremental_delete_insert_pruned.sql reads the oldest changed value of its prune column
            return _description("oldest"), [("2018-08-01 00:00:00",)], 1
        return None, [], 0


@dataclass
class Rendering:
    """What one or more dbt invocations sent, per node, and the project's manifest."""

    statements: list[tuple[str, str]]
    manifest: dict

    def of(self, node_id: str) -> list[str]:
        return [sql for node, sql in self.statements if node == node_id]

    @property
    def models(self) -> dict[str, dict]:
        return {k: n for k, n in self.manifest["nodes"].items() if n["resource_type"] == "model"}


@contextmanager
def recording(fake: RecordingRedshift) -> Iterator[RecordingRedshift]:
    """redshift_connector.connect replaced by `fake` for the duration (dbt-redshift calls it by attribute)."""
    import redshift_connector

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redshift_connector, "connect", fake.connect)
        yield fake


def _manifest(settings: Settings) -> dict:
    return json.loads((settings.data_dir / "dbt" / "target" / "manifest.json").read_text())


def render_project(settings: Settings, select: str | None = None) -> tuple[Rendering, Rendering]:
    """(first build on an empty warehouse, the next build with every relation present), offline.

    `select` limits `dbt run` to a dbt selection (the seeds and the Spectrum DDL are rendered anyway).
    Raises loaders.build.dbt_runner.DbtError when dbt fails to render a model.
    """
    s = settings.with_(warehouse="redshift")
    # one thread: statements are attributed in order, and the catalog is listed once per schema
    flags = ["--no-populate-cache", "--threads", "1"]
    run = ["run", *flags, *(["--select", select] if select else [])]
    args = json.dumps({"glue_database": "olist_lake", "location": LAKE, "iam_role": ROLE, "create_table": True})
    with recording(RecordingRedshift()) as first:
        run_dbt(s, ["seed", *flags], quiet=True)
        run_dbt(s, run, quiet=True)
        run_dbt(s, ["run-operation", "setup_spectrum", "--args", args, "--no-populate-cache"], quiet=True)
    manifest = _manifest(s)
    existing: dict[str, dict[str, str]] = {}
    columns: dict[str, list[str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] in ("model", "seed"):
            kind = "view" if node["config"]["materialized"] == "view" else "table"
            existing.setdefault(node["schema"], {})[node["alias"]] = kind
            columns[node["alias"]] = list(node["columns"])
    with recording(RecordingRedshift(existing, columns)) as second:
        run_dbt(s, run, quiet=True)
    return Rendering(first.statements, manifest), Rendering(second.statements, _manifest(s))


# ---- the rules -------------------------------------------------------------------------------

# Functions PostgreSQL and DuckDB have and Redshift does not (or has only on the leader node, where a
# query over a table cannot use them). Source: the Redshift Database Developer Guide, "Unsupported
# PostgreSQL functions" and "Leader node-only functions".
MISSING_FUNCTIONS = (
    "generate_series",
    "string_agg",
    "array_agg",
    "unnest",
    "make_date",
    "make_timestamp",
    "regexp_matches",
    "regexp_split_to_table",
    "gen_random_uuid",
    "to_jsonb",
    "jsonb_build_object",
    "date_bin",
    "list_aggregate",
    "epoch_ms",
    "strftime",
    "strptime",
)
# Syntax Redshift refuses where PostgreSQL or DuckDB (the engines the tests build on) accept it.
MISSING_SYNTAX = {
    r"\bdistinct\s+on\s*\(": "SELECT DISTINCT ON",
    r"\bfilter\s*\(\s*where\b": "aggregate FILTER (WHERE ...)",
    r"\bon\s+conflict\b": "INSERT ... ON CONFLICT",
    r"::\s*jsonb\b": "jsonb",
    r"\b(group|order)\s+by\s+all\b": "GROUP BY ALL / ORDER BY ALL (DuckDB)",
    r"\*\s*(exclude|replace)\s*\(": "SELECT * EXCLUDE/REPLACE (DuckDB)",
    r"\bunion\s+(all\s+)?by\s+name\b": "UNION BY NAME (DuckDB)",
    r"\blateral\b": "LATERAL joins",
    r"\bcreate\s+(unique\s+)?index\b": "CREATE INDEX (Redshift has no indexes: macros/pg_indexes.sql)",
}
RULES = (
    "parses with SQLFluff's redshift dialect",
    "a view over an external (Spectrum) table is late-binding (WITH NO SCHEMA BINDING)",
    "a late-binding view names every table it reads with its schema",
    "every view is late-binding (a bound view is dropped with DROP ... CASCADE of its parent table)",
    "no function Redshift lacks: " + ", ".join(MISSING_FUNCTIONS),
    "no syntax Redshift refuses: " + ", ".join(MISSING_SYNTAX.values()),
    "DISTKEY and SORTKEY name columns of the model",
    "the external schema and table are Spectrum DDL (CREATE EXTERNAL SCHEMA ... FROM DATA CATALOG)",
)
SQL_COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)


def _code(sql: str) -> str:
    return SQL_COMMENT.sub(" ", sql)


def _is_project_statement(sql: str) -> bool:
    """DDL/DML the project's models, seeds and macros produce (not dbt-redshift's own catalog queries)."""
    head = _code(sql).strip().lower()
    return head.startswith(("create", "insert", "delete", "alter", "drop", "copy", "grant", "comment", "update"))


def external_schemas(rendering: Rendering) -> set[str]:
    """Schemas the project declares as Spectrum (external) schemas: the sources dbt reads from the lake."""
    found = set()
    for sql in (sql for _, sql in rendering.statements):
        match = re.search(r'create external schema if not exists\s+"?(\w+)"?', _code(sql), re.I)
        if match:
            found.add(match.group(1).lower())
    return found


def view_problems(node_id: str, sql: str, external: set[str]) -> list[str]:
    code = _code(sql)
    if not re.match(r"\s*create\s+view\b", code, re.I):
        return []
    late = re.search(r"\)\s*with\s+no\s+schema\s+binding\s*;?\s*$", code, re.I) is not None
    problems = []
    reads = {m.lower() for m in re.findall(r'"\w+"\."(\w+)"\."\w+"', code)}
    if reads & external and not late:
        problems.append(
            f"{node_id}: view over the external table(s) in {sorted(reads & external)} is not late-binding: "
            "Redshift refuses it (dbt config bind: false renders WITH NO SCHEMA BINDING)"
        )
    elif not late:
        problems.append(
            f"{node_id}: bound view: DROP ... CASCADE of a parent table (a table rebuild) drops it "
            "until it is rebuilt (dbt config bind: false)"
        )
    if late:
        # Redshift: a late-binding view must name every table with its schema
        ctes = {m.lower() for m in re.findall(r"(?:\bwith|,)\s*(\w+)\s+as\s*\(", code, re.I)}
        # FROM inside EXTRACT(... FROM x), TRIM, SUBSTRING, POSITION, OVERLAY names no table
        tables = re.sub(r"\b(extract|trim|substring|position|overlay)\s*\([^()]*\)", "f()", code, flags=re.I)
        for target in re.findall(r"\b(?:from|join)\s+([^\s(),;]+)", tables, re.I):
            if "." not in target and target.strip('"').lower() not in ctes:
                problems.append(f"{node_id}: late-binding view reads {target} without a schema: Redshift refuses it")
    return problems


def function_problems(node_id: str, sql: str) -> list[str]:
    code = _code(sql).lower()
    found = [f"{node_id}: {name}() does not exist on Redshift" for name in MISSING_FUNCTIONS if f"{name}(" in code]
    found += [
        f"{node_id}: {what} is not supported on Redshift"
        for pattern, what in MISSING_SYNTAX.items()
        if re.search(pattern, code, re.S)
    ]
    return found


def key_problems(node_id: str, sql: str, columns: set[str]) -> list[str]:
    code = _code(sql).lower()
    if not re.match(r"\s*create\s+(temporary\s+)?table\b", code):
        return []
    named: list[str] = []
    dist = re.search(r"\bdistkey\s*\(\s*\"?(\w+)\"?\s*\)", code)
    if dist:
        named.append(dist.group(1))
    sort = re.search(r"\bsortkey\s*\(([^)]*)\)", code)
    if sort:
        named += [c.strip().strip('"') for c in sort.group(1).split(",")]
    return [f"{node_id}: DISTKEY/SORTKEY column {c!r} is not a column of the model" for c in named if c not in columns]


def parse_problems(node_id: str, sql: str) -> list[str]:
    try:
        # a seed's INSERT carries DB-API placeholders that the driver fills in
        sqlfluff.parse(sql.replace("%s", "NULL"), dialect="redshift")
    except sqlfluff.api.APIParsingError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)]
        return [f"{node_id}: not valid Redshift SQL: {first[0].strip()}"]
    return []


def problems(rendering: Rendering, parse: bool = True) -> list[str]:
    """Every rule broken by the rendered statements; [] when all hold. `parse` runs SQLFluff too (slow)."""
    external = external_schemas(rendering) | {"spectrum"}
    found: list[str] = []
    seen: set[str] = set()
    for node_id, sql in rendering.statements:
        if not _is_project_statement(sql):
            continue
        node = rendering.manifest["nodes"].get(node_id)
        columns = {c.lower() for c in node["columns"]} if node else set()
        found += view_problems(node_id, sql, external)
        found += function_problems(node_id, sql)
        if node:
            found += key_problems(node_id, sql, columns)
        key = _code(sql).strip()
        if parse and key not in seen:
            seen.add(key)
            found += parse_problems(node_id or "(run-operation)", sql)
    return found
