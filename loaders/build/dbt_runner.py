"""Run dbt in-process (dbt's programmatic runner) against the configured warehouse.

profiles.yml reads the same DWH_* variables as the loaders, so the settings are handed to
dbt through the environment of this process for the duration of one invocation.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings


class DbtError(RuntimeError):
    """dbt reported failures; the message lists the failing nodes."""


@dataclass
class DbtReport:
    command: str
    success: bool
    results: list[tuple[str, str, float]] = field(default_factory=list)  # (node, status, seconds)
    messages: dict[str, str] = field(default_factory=dict)  # node -> dbt's message and where failing rows are

    @property
    def failures(self) -> list[tuple[str, str, float]]:
        return [r for r in self.results if r[1] in ("error", "fail", "runtime error", "runtime_error")]


def dbt_env(settings: Settings) -> dict[str, str]:
    """The DWH_* variables profiles.yml and dbt_project.yml read, from the settings; on
    PostgreSQL also PGOPTIONS with `-c jit=off` for dbt's sessions (unless it sets jit)."""
    s = settings
    env = {
        "DWH_WAREHOUSE": s.warehouse,
        "DWH_DUCKDB_PATH": str(s.duckdb_path),
        "DWH_RAW_SCHEMA": s.raw_schema,
        "DWH_PG_HOST": s.pg_host,
        "DWH_PG_PORT": str(s.pg_port),
        "DWH_PG_USER": s.pg_user,
        "DWH_PG_DATABASE": s.pg_database,
        "DWH_REDSHIFT_HOST": s.redshift_host or "redshift.invalid",
        "DWH_REDSHIFT_PORT": str(s.redshift_port),
        "DWH_REDSHIFT_USER": s.redshift_user or "dbt",
        "DWH_REDSHIFT_DATABASE": s.redshift_database,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    if not sys.stdout.isatty():  # no ANSI colour codes in cron logs, Glue logs or a pipe
        env["DBT_USE_COLORS"] = "false"
    if s.warehouse == "postgres" and "jit" not in os.environ.get("PGOPTIONS", ""):
        # dbt's sessions run short incremental statements; estimated without statistics (a table
        # dbt just made), they pass jit_above_cost and PostgreSQL spends seconds compiling: an
        # empty hourly window's selection of fact_orders took 3,872 ms with JIT, 9 ms without
        # (BENCHMARKS.md, issue 18: PostgreSQL build). libpq reads PGOPTIONS; a user's own jit
        # setting in it is kept.
        env["PGOPTIONS"] = (os.environ.get("PGOPTIONS", "") + " -c jit=off").strip()
    if s.pg_password:
        env["DWH_PG_PASSWORD"] = s.pg_password
    if s.redshift_password:
        env["DWH_REDSHIFT_PASSWORD"] = s.redshift_password
    return env


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_dbt(settings: Settings, args: list[str], quiet: bool = False) -> DbtReport:
    """Invoke `dbt <args>` on this project; raise DbtError when dbt reports a failure."""
    from dbt.cli.main import dbtRunner

    project = str(settings.project_dir)
    work = settings.data_dir / "dbt"
    full_args = [
        *args,
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target",
        settings.warehouse,
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
    ]
    if quiet:
        full_args.insert(0, "--quiet")
    with _environment(dbt_env(settings)):
        try:
            result = dbtRunner().invoke(full_args)
        finally:
            _release_duckdb()
    report = DbtReport(" ".join(args), bool(result.success))
    for node in getattr(result.result, "results", None) or []:
        graph_node = getattr(node, "node", None)
        name = getattr(graph_node, "unique_id", "?")
        status = str(getattr(node, "status", ""))
        report.results.append((name, status, float(getattr(node, "execution_time", 0) or 0)))
        message = " ".join(str(getattr(node, "message", "") or "").split())
        relation = getattr(graph_node, "relation_name", None)
        if relation and name.startswith("test."):
            message += f"; failing rows: select * from {relation}"
        report.messages[name] = message
    if not result.success:
        if report.failures:
            lines = [f"  {n} ({s}): {_shorten(report.messages.get(n, ''))}" for n, s, _ in report.failures[:10]]
            raise DbtError(f"dbt {report.command} failed:\n" + "\n".join(lines))
        reason = f": {result.exception}" if result.exception else ""
        raise DbtError(f"dbt {report.command} failed{reason}")
    return report


def _shorten(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def compile_inline(settings: Settings, sql: str) -> str:
    """The SQL dbt renders from `sql` (jinja, macros) for the settings' target; no query runs."""
    from dbt.cli.main import dbtRunner

    project = str(settings.project_dir)
    work = settings.data_dir / "dbt"
    args = [
        "compile",
        "--inline",
        sql,
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target",
        settings.warehouse,
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        "--quiet",
        "--no-populate-cache",
        "--no-introspect",
    ]
    with _environment(dbt_env(settings)):
        try:
            result = dbtRunner().invoke(args)
        finally:
            _release_duckdb()
    if not result.success:
        raise DbtError(f"dbt compile failed: {result.exception}")
    node: Any = result.result.results[0].node  # type: ignore[union-attr]  # a compile returns results
    return str(node.compiled_code)


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a run.

    The loader, a later dbt run or another process can then open the file with any settings
    (read-only included), and nothing is left for the interpreter's shutdown to tear down.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a dependency
        return
    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None
