"""The raw tables' evolution as each warehouse receives it (Redshift rendered and parsed with
SQLFluff's redshift dialect, driven through a recording connection), and the staging macro's
declared types against loaders/declarations/types.py on every target."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlfluff

from loaders.build.dbt_runner import compile_inline
from loaders.declarations import Column, LogicalType, declared_tables
from loaders.schema.raw import RawColumn, RawSchemaError, evolve_steps, run_steps, warehouse_logical
from loaders.store import ObjectStore
from loaders.warehouses import DuckDBWarehouse, PostgresWarehouse, RedshiftWarehouse

from .test_redshift_sql import RecordingConnection

TYPES = ["char(32)", "varchar(16)", "text", "integer", "bigint", "decimal(12,2)", "double", "timestamp", "timestamp(6)"]


@pytest.mark.parametrize("warehouse", ["duckdb", "postgres", "redshift"])
def test_staging_casts_to_the_types_the_loader_creates(settings, warehouse):
    s = settings.with_(warehouse=warehouse)
    inline = " | ".join(f"{{{{ declared_type('{t}') }}}}" for t in TYPES)
    rendered = [x.strip() for x in compile_inline(s, inline).split("|")]
    assert rendered == [LogicalType.parse(t).sql(warehouse).lower() for t in TYPES]


def test_staging_reads_declared_columns_as_declared_on_redshift(settings):
    s = settings.with_(warehouse="redshift")
    inline = (
        "{% set node = graph.sources.values() | selectattr('source_name', 'equalto', 'olist') "
        "| selectattr('name', 'equalto', 'order_items') | first %}"
        "select {{ declared_columns('versions', node) }} from {{ source('olist', 'order_items') }} as versions"
    )
    sql = compile_inline(s, inline)
    assert 'cast(versions."price" as decimal(10,2)) as "price"' in sql
    assert 'cast(versions."order_id" as varchar(128)) as "order_id"' in sql
    assert 'versions."_batch_id"' in sql and "versions.*" not in sql
    sqlfluff.parse(sql, dialect="redshift")


def _raw(engine: str, *columns: tuple[str, str, int | None, int | None, int | None]) -> dict[str, RawColumn]:
    out = {}
    for name, data_type, length, precision, scale in columns:
        logical, sql = warehouse_logical(engine, data_type, length, precision, scale)
        out[name] = RawColumn(name, sql, logical)
    return out


def _orders_batch(project_dir):
    orders = declared_tables(project_dir)["orders"]
    wide = [Column(c.name, LogicalType("varchar", 32)) if c.name == "order_status" else c for c in orders.columns]
    return orders, replace(orders, columns=(*wide, Column("order_channel", LogicalType("varchar", 16))))


def test_redshift_widens_varchar_in_place_and_adds_columns(settings):
    orders, batch = _orders_batch(settings.project_dir)
    wh = RedshiftWarehouse(settings.with_(warehouse="redshift"), ObjectStore(settings.store_url, settings))
    existing = _raw(
        "redshift",
        *[(c.name, "character varying", 128, None, None) for c in orders.columns if c.type.is_string],
        *[(c.name, "timestamp without time zone", None, None, None) for c in orders.columns if not c.type.is_string],
    )
    existing["order_status"] = _raw("redshift", ("order_status", "character varying", 64, None, None))["order_status"]
    steps = evolve_steps(wh, orders, batch.columns, existing)
    assert [(s.statements, s.transaction) for s in steps] == [
        (('ALTER TABLE "raw"."orders" ALTER COLUMN "order_status" TYPE VARCHAR(128)',), False),
        (('ALTER TABLE "raw"."orders" ADD COLUMN "order_channel" VARCHAR(64)',), False),
    ]
    for step in steps:
        for sql in step.statements:
            sqlfluff.parse(sql, dialect="redshift")


def test_redshift_widens_other_types_by_add_copy_drop_rename_in_one_transaction(settings):
    items = declared_tables(settings.project_dir)["order_items"]
    wh = RedshiftWarehouse(settings.with_(warehouse="redshift"), ObjectStore(settings.store_url, settings))
    wh.conn = RecordingConnection()
    existing = _raw("redshift", ("price", "numeric", None, 10, 2), ("order_item_id", "integer", None, 32, 0))
    wider = [Column("price", LogicalType("decimal", 12, 2)), Column("order_item_id", LogicalType("bigint"))]
    steps = evolve_steps(wh, items, wider, existing)
    run_steps(wh, steps)
    assert wh.conn.sql == [
        "BEGIN",
        'LOCK "raw"."order_items"',
        'ALTER TABLE "raw"."order_items" ADD COLUMN "price__widened" DECIMAL(12,2)',
        'UPDATE "raw"."order_items" SET "price__widened" = "price"',
        'ALTER TABLE "raw"."order_items" DROP COLUMN "price"',
        'ALTER TABLE "raw"."order_items" RENAME COLUMN "price__widened" TO "price"',
        "COMMIT",
        "BEGIN",
        'LOCK "raw"."order_items"',
        'ALTER TABLE "raw"."order_items" ADD COLUMN "order_item_id__widened" BIGINT',
        'UPDATE "raw"."order_items" SET "order_item_id__widened" = "order_item_id"',
        'ALTER TABLE "raw"."order_items" DROP COLUMN "order_item_id"',
        'ALTER TABLE "raw"."order_items" RENAME COLUMN "order_item_id__widened" TO "order_item_id"',
        "COMMIT",
    ]
    for sql in wh.conn.sql:
        sqlfluff.parse(sql, dialect="redshift")


def test_redshift_key_column_widening_asks_for_a_rebuild(settings):
    items = replace(declared_tables(settings.project_dir)["order_items"], merge_key="order_item_id")
    wh = RedshiftWarehouse(settings.with_(warehouse="redshift"), ObjectStore(settings.store_url, settings))
    existing = _raw("redshift", ("order_item_id", "integer", None, 32, 0))
    with pytest.raises(RawSchemaError, match=r"'order_items', column 'order_item_id'.*INTEGER.*BIGINT.*rebuild"):
        evolve_steps(wh, items, [Column("order_item_id", LogicalType("bigint"))], existing)


@pytest.mark.parametrize("warehouse", [DuckDBWarehouse, PostgresWarehouse])
def test_widening_statements_of_duckdb_and_postgres(settings, warehouse):
    items = declared_tables(settings.project_dir)["order_items"]
    wh = warehouse(settings, ObjectStore(settings.store_url, settings))
    existing = _raw(wh.name, ("price", "numeric" if wh.name == "postgres" else "DECIMAL(10,2)", None, 10, 2))
    (step,) = evolve_steps(wh, items, [Column("price", LogicalType("decimal", 12, 2))], existing)
    verb = "SET DATA TYPE" if wh.name == "duckdb" else "TYPE"
    assert step.statements == (f'ALTER TABLE "raw"."order_items" ALTER COLUMN "price" {verb} DECIMAL(12,2)',)


def test_a_column_of_another_kind_in_raw_stops_the_load(settings):
    items = declared_tables(settings.project_dir)["order_items"]
    wh = DuckDBWarehouse(settings, ObjectStore(settings.store_url, settings))
    existing = _raw("duckdb", ("price", "DECIMAL(10,2)", None, 10, 2))
    with pytest.raises(RawSchemaError) as info:
        evolve_steps(wh, items, [Column("price", LogicalType("varchar", 16))], existing)
    assert str(info.value) == (
        "table 'order_items', column 'price': the batch has varchar(16) but raw.order_items has DECIMAL(10,2), "
        "another kind of type; declare the column under a new name or rebuild raw.order_items; nothing was loaded"
    )


def test_narrower_or_equal_batch_columns_change_nothing(settings):
    items = declared_tables(settings.project_dir)["order_items"]
    wh = DuckDBWarehouse(settings, ObjectStore(settings.store_url, settings))
    existing = _raw("duckdb", ("price", "DECIMAL(12,2)", None, 12, 2), ("seller_id", "VARCHAR", None, None, None))
    batch = [Column("price", LogicalType("decimal", 10, 2)), Column("seller_id", LogicalType("char", 32))]
    assert evolve_steps(wh, items, batch, existing) == []


def test_a_refused_widening_is_one_line_and_changes_nothing(request):
    """PostgreSQL refuses to retype a column a view reads: the load stops with one line naming
    the step, and the raw column keeps its type."""
    from loaders.load import ensure_raw_tables
    from loaders.schema.raw import evolve_raw, raw_columns
    from loaders.warehouses import open_warehouse

    s = request.getfixturevalue("pg_settings")
    items = declared_tables(s.project_dir)["order_items"]
    with open_warehouse(s, ObjectStore(s.store_url, s)) as wh:
        ensure_raw_tables(wh, [items])
        wh.execute('CREATE VIEW public.item_prices AS SELECT price FROM "raw"."order_items"')
        with pytest.raises(RawSchemaError) as info:
            evolve_raw(wh, items, [Column("price", LogicalType("decimal", 12, 2))])
        assert str(info.value) == (
            "raw.order_items.price widened from DECIMAL(10,2) to DECIMAL(12,2) failed: cannot alter type of a "
            "column used by a view or rule; nothing was loaded"
        )
        assert raw_columns(wh, "order_items")["price"].sql == "DECIMAL(10,2)"
