"""PostgreSQL indexes on the incremental models (macros/pg_indexes.sql, issue 18): a B-tree on
each one's unique key and load time, created with the table or by `run-operation
create_model_indexes`; none on DuckDB."""

from __future__ import annotations

import psycopg2
import pytest

from loaders.build.dbt_runner import run_dbt

from .helpers import extract_and_load, fill_source, warehouse_rows

pytestmark = pytest.mark.slow


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, settings):
    return settings if request.param == "duckdb" else request.getfixturevalue("pg_settings")


def model_indexes(s, schema: str, table: str) -> list[str]:
    """The column lists of the indexes on a model's table, sorted."""
    if s.warehouse == "postgres":
        sql = (
            "SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM pg_index i"
            " CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            f" WHERE i.indrelid = '{schema}.{table}'::regclass GROUP BY i.indexrelid"
        )
    else:
        sql = f"SELECT expressions FROM duckdb_indexes() WHERE schema_name = '{schema}' AND table_name = '{table}'"
    return sorted(r[0] for r in warehouse_rows(s, sql))


def test_incremental_models_are_indexed_on_postgres_only(warehouse, olist_csv):
    """macros/pg_indexes.sql: PostgreSQL gets a B-tree on each incremental model's unique key and
    load time when dbt creates the table; `run-operation create_model_indexes` adds the missing
    ones to a table built without them, once; DuckDB gets none."""
    s = warehouse
    tables = ["orders", "order_items", "order_payments", "order_reviews"]
    fill_source(s, olist_csv, tables)
    extract_and_load(s, tables=tables)
    run_dbt(s, ["run", "--select", "+fact_orders"], quiet=True)
    expected = {
        ("staging", "stg_olist__orders"): ["loaded_at", "order_id"],
        ("staging", "stg_olist__order_items"): ["loaded_at", "order_id,order_item_id"],
        ("marts", "fact_orders"): ["order_id", "source_loaded_at"],
    }
    if s.warehouse != "postgres":
        assert {k: model_indexes(s, *k) for k in expected} == dict.fromkeys(expected, [])
        return
    assert {k: model_indexes(s, *k) for k in expected} == expected
    # a warehouse built before the indexes were declared: drop them, then the run-operation
    conn = psycopg2.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, dbname=s.pg_database)
    conn.autocommit = True
    with conn.cursor() as cur:
        for schema, table in expected:
            cur.execute(f"SELECT indexname FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = '{table}'")
            for (name,) in cur.fetchall():
                cur.execute(f'DROP INDEX "{schema}"."{name}"')
    conn.close()
    assert {k: model_indexes(s, *k) for k in expected} == dict.fromkeys(expected, [])
    run_dbt(s, ["run-operation", "create_model_indexes"], quiet=True)
    assert {k: model_indexes(s, *k) for k in expected} == expected
    run_dbt(s, ["run-operation", "create_model_indexes"], quiet=True)  # present: nothing added
    assert {k: model_indexes(s, *k) for k in expected} == expected


def test_dbt_sessions_on_postgres_run_without_jit(pg_settings, monkeypatch):
    """dbt's PostgreSQL sessions get `-c jit=off` through PGOPTIONS (libpq): JIT compilation cost
    seconds per short hourly statement estimated without statistics (BENCHMARKS.md, issue 18).
    A user's own jit setting is kept; DuckDB gets no PGOPTIONS."""
    from loaders.build.dbt_runner import _environment, dbt_env

    monkeypatch.delenv("PGOPTIONS", raising=False)
    env = dbt_env(pg_settings)
    assert "PGOPTIONS" not in dbt_env(pg_settings.with_(warehouse="duckdb"))
    s = pg_settings
    with _environment(env):  # what dbt-postgres's psycopg2 connections see
        conn = psycopg2.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, dbname=s.pg_database)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW jit")
                assert cur.fetchone() == ("off",)
        finally:
            conn.close()
    monkeypatch.setenv("PGOPTIONS", "-c jit=on")
    assert "PGOPTIONS" not in dbt_env(pg_settings)  # the user's own setting stays as it is
