"""The two schema-drift cases users reported (issue 14), on DuckDB and PostgreSQL, MariaDB source.

* source-schema-change, steps (a) to (d) as the case runs them: the source gains
  orders.order_channel and an order's update (a), widens order_items.price to DECIMAL(12,2)
  with a value that does not fit the declared decimal(10,2) (b), and renames
  customers.customer_city (c); then every table is extracted, loaded and built (d). The update
  reaches fact_orders ('shipped'), the new column reaches raw; (b) and (c) each stop their table
  with one line naming table and column, nothing of them written, rounded or nulled. Once a
  person declares the column and the type (a copy of the dbt project, edited as the lines say),
  they reach staging and the marts.
* declared-new-column: the user declares the new column before extracting. The batch loaded
  under the old declaration is skipped, the new ones load, and the table keeps loading.

The inputs (tests/cases/schema_drift/) are the cases' own: two rows per table.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest

from loaders import pipeline
from loaders.config import Settings
from loaders.declarations import declared_tables, freshness_rules
from loaders.report import Reporter
from loaders.runs import RunFailed
from loaders.sources import open_source

from .helpers import fill_source, quiet

CASE = Path(__file__).parent / "cases" / "schema_drift"
ORDER = "18899d7d59a5ab5aa0dff9fca8604ece"
ITEM_ORDER = "6e7f85a9d0fe9b5dfb504c6f2991d744"
SOURCES = "models/staging/olist/_olist__sources.yml"
PROJECT_PARTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "analyses", "tests/dbt")


@pytest.fixture(params=["duckdb", "postgres"])
def case_settings(request, settings: Settings, mysql_url: str, tmp_path: Path) -> Settings:
    s = settings if request.param == "duckdb" else request.getfixturevalue("pg_settings")
    return s.with_(source_url=mysql_url, project_dir=project_copy(s.project_dir, tmp_path / "project"))


def project_copy(src: Path, dst: Path) -> Path:
    """The dbt project as a user's checkout that they may edit."""
    for part in PROJECT_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dst / part)
        else:
            (dst / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / part, dst / part)
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")
    declared_tables.cache_clear()  # read once per process, as a new `dwh` run would read it again
    freshness_rules.cache_clear()


def declare_order_channel(project: Path, staging: bool = True) -> None:
    """What `dwh schema diff` prints for orders.order_channel: the YAML line, the staging line."""
    status = '          - {name: order_status, data_type: "varchar(16)",'
    edit(
        project / SOURCES,
        status,
        '          - {name: order_channel, data_type: "varchar(16)", description: "Sales channel."}\n' + status,
    )
    if staging:
        edit(
            project / "models/staging/olist/stg_olist__orders.sql",
            "        order_status,\n",
            "        order_status,\n        order_channel,\n",
        )


def run_sql_file(s: Settings, name: str) -> None:
    with open_source(s.source_url) as db:
        for statement in (CASE / name).read_text().split(";"):
            if statement.strip() and not statement.strip().startswith("--") or "\n" in statement.strip():
                lines = [x for x in statement.splitlines() if x.strip() and not x.strip().startswith("--")]
                if lines:
                    db.execute("\n".join(lines))


def rows(s: Settings, sql: str) -> list[tuple]:
    if s.warehouse == "duckdb":
        import duckdb

        with duckdb.connect(s.duckdb_path, read_only=True) as con:
            return con.execute(sql).fetchall()
    with psycopg2.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, dbname=s.pg_database) as conn:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()


def column_type(s: Settings, schema: str, table: str, column: str) -> str:
    ((data_type, precision, scale),) = rows(
        s,
        "SELECT data_type, numeric_precision, numeric_scale FROM information_schema.columns "
        f"WHERE table_schema = '{schema}' AND table_name = '{table}' AND column_name = '{column}'",
    )
    return f"{data_type.split('(')[0].lower()}({precision},{scale})"


def latest(s: Settings, table: str, key: str, columns: str) -> dict:
    sql = (
        f"SELECT {key}, {columns} FROM (SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY updated_at DESC, "
        f"_batch_id DESC) AS rn FROM raw.{table}) AS v WHERE rn = 1"
    )
    return {r[0]: r[1:] for r in rows(s, sql)}


def extract_lines(s: Settings, tables: list[str] | None = None) -> tuple[list[str], RunFailed | None]:
    """`dwh extract [--table ...]`: the lines it prints, and the RunFailed it ends with (if any)."""
    lines: list[str] = []
    try:
        pipeline.extract(s, Reporter(echo=lines.append), "auto", tables)
    except RunFailed as exc:
        return lines, exc
    return lines, None


def test_source_schema_change_case(case_settings):
    s = case_settings
    fill_source(s, CASE / "csv")
    pipeline.extract(s, quiet(), "auto")
    pipeline.load(s, quiet())
    pipeline.build(s, quiet())
    price_before = latest(s, "order_items", "order_id", "price")[ITEM_ORDER]

    # a) a new column and an update: the update arrives, the column reaches raw only
    run_sql_file(s, "a_add_column.sql")
    lines, failed = extract_lines(s, ["orders"])
    assert failed is None
    assert [x for x in lines if "schema:" in x] == [
        "  schema: table 'orders', column 'order_channel': new in the source (varchar(16)), not declared: "
        "extracted into raw.orders (nullable varchar(16)); declare it to use it: `dwh schema diff --table orders`"
    ]
    pipeline.load(s, quiet(), ["orders"])

    # b) a widened price whose value does not fit the declared decimal(10,2): one line
    run_sql_file(s, "b_widen_decimal.sql")
    widen = (
        f"table 'order_items', column 'price', key (order_id='{ITEM_ORDER}', order_item_id=1): 123456789.50 does "
        "not fit the declared decimal(10,2) (the source widened the column to decimal(12,2)): extract of "
        "'order_items' stopped, nothing written; declare the wider type in models/staging/olist/_olist__sources.yml, "
        'table order_items: `- {name: price, data_type: "decimal(12,2)", ...}` (every step: `dwh schema diff '
        "--table order_items`), or fix the row in the source: the next run extracts it again"
    )
    lines, failed = extract_lines(s, ["order_items"])
    assert lines[1:] == [f"  {'order_items':<34} FAILED: {widen}"]
    assert str(failed) == f"1 unit(s) failed: extract order_items failed: {widen}"

    # c) a renamed column: one line
    run_sql_file(s, "c_rename_column.sql")
    rename = (
        "table 'customers', column 'customer_city' (varchar(64)): declared but missing in the source (dropped, or "
        "renamed to 'customer_city_name': a rename shows as a drop plus a new column): extract of 'customers' "
        "stopped; restore the column in the source, or remove it from models/staging/olist/_olist__sources.yml and "
        "stg_olist__customers.sql (raw keeps it, NULL from then on)"
    )
    lines, failed = extract_lines(s, ["customers"])
    assert lines[1:] == [f"  {'customers':<34} FAILED: {rename}"]
    assert str(failed) == f"1 unit(s) failed: extract customers failed: {rename}"

    # `dwh schema diff` now prints what the README shows
    diff: list[str] = []
    pipeline.schema_diff(s, Reporter(echo=diff.append))
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ dwh schema diff\n", 1)[1].split("```", 1)[0]
    assert [x.strip("\n") for x in diff if x.strip()] == shown.splitlines()

    # d) every table: customers and order_items stop, one line each, the others go on, load, build
    lines, failed = extract_lines(s)
    assert str(failed) == f"2 unit(s) failed: extract customers failed: {rename}; extract order_items failed: {widen}"
    assert [x for x in lines if "FAILED" in x or "schema:" in x] == [
        f"  {'customers':<34} FAILED: {rename}",
        "  schema: table 'orders', column 'order_channel': new in the source (varchar(16)), not declared: "
        "extracted into raw.orders (nullable varchar(16)); declare it to use it: `dwh schema diff --table orders`",
        f"  {'order_items':<34} FAILED: {widen}",
    ]
    others = set(declared_tables(s.project_dir)) - {"customers", "order_items"}
    assert {x.split()[0] for x in lines if " rows " in x} == others
    pipeline.load(s, quiet())
    pipeline.build(s, quiet())
    assert rows(s, "SELECT order_id, order_status FROM marts.fact_orders ORDER BY 1") == [
        (ORDER, "shipped"),
        (ITEM_ORDER, "delivered"),
    ]
    # raw: the new column (nullable, old rows NULL); nothing of order_items or customers written
    assert latest(s, "orders", "order_id", "order_channel, order_status") == {
        ORDER: ("app", "shipped"),
        ITEM_ORDER: (None, "delivered"),
    }
    assert latest(s, "order_items", "order_id", "price")[ITEM_ORDER] == price_before
    assert column_type(s, "raw", "order_items", "price") in ("decimal(10,2)", "numeric(10,2)")
    assert rows(s, f"SELECT price FROM marts.fact_order_items WHERE order_id = '{ITEM_ORDER}'") == [price_before]
    assert rows(
        s,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'raw' "
        "AND table_name = 'customers' AND column_name = 'customer_city_name'",
    ) == [(0,)]

    # a person declares both, as the lines say, and rebuilds: the wide value reaches the marts
    declare_order_channel(s.project_dir)
    edit(
        s.project_dir / SOURCES, '{name: price, data_type: "decimal(10,2)"', '{name: price, data_type: "decimal(12,2)"'
    )
    lines, failed = extract_lines(s, ["order_items", "orders"])
    assert failed is None and not [x for x in lines if "schema:" in x]
    pipeline.load(s, quiet())
    assert latest(s, "order_items", "order_id", "price")[ITEM_ORDER] == (Decimal("123456789.50"),)
    assert column_type(s, "raw", "order_items", "price") in ("decimal(12,2)", "numeric(12,2)")
    pipeline.build(s, quiet(), ["--full-refresh"])
    assert rows(s, f"SELECT order_channel FROM staging.stg_olist__orders WHERE order_id = '{ORDER}'") == [("app",)]
    assert rows(s, "SELECT order_id, order_status FROM marts.fact_orders ORDER BY 1") == [
        (ORDER, "shipped"),
        (ITEM_ORDER, "delivered"),
    ]
    assert rows(s, f"SELECT price FROM marts.fact_order_items WHERE order_id = '{ITEM_ORDER}'") == [
        (Decimal("123456789.50"),)
    ]


def test_declared_new_column_case(case_settings):
    s = case_settings
    fill_source(s, CASE / "csv")
    first = pipeline.extract(s, quiet(), "auto", ["orders"])
    pipeline.load(s, quiet(), ["orders"])
    with open_source(s.source_url) as db:
        db.execute("ALTER TABLE orders ADD COLUMN order_channel VARCHAR(16) NULL AFTER order_status")
        db.execute(f"UPDATE orders SET order_channel = 'app' WHERE order_id = '{ORDER}'")
    declare_order_channel(s.project_dir, staging=False)

    lines: list[str] = []
    (batch,) = pipeline.extract(s, Reporter(echo=lines.append), "auto", ["orders"])
    assert not [x for x in lines if "schema:" in x]  # declared: no change to report
    loads = pipeline.load(s, quiet(), ["orders"])
    assert [(r.batch_id, r.status) for r in loads] == [(first[0].batch_id, "skipped"), (batch.batch_id, "loaded")]
    assert latest(s, "orders", "order_id", "order_channel") == {ORDER: ("app",), ITEM_ORDER: (None,)}

    # the table keeps loading: an incremental change, then a whole historical re-extract
    with open_source(s.source_url) as db:
        db.execute(f"UPDATE orders SET order_channel = 'web' WHERE order_id = '{ITEM_ORDER}'")
    pipeline.extract(s, quiet(), "auto", ["orders"])
    pipeline.extract(s, quiet(), "historical", ["orders"])
    loads = pipeline.load(s, quiet(), ["orders"])
    assert [r.status for r in loads] == ["skipped", "skipped", "loaded", "loaded"]
    assert latest(s, "orders", "order_id", "order_channel") == {ORDER: ("app",), ITEM_ORDER: ("web",)}
