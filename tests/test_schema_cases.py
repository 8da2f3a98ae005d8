"""The two schema-drift cases users reported (issue 14), on DuckDB and PostgreSQL, MariaDB source.

* source-schema-change: the source gains orders.order_channel, widens order_items.price to
  DECIMAL(12,2) (with a value that needs it) and renames customers.customer_city. The new
  column and the wide value reach raw, the rename stops customers only; once a person declares
  the column and the type (a copy of the dbt project, edited as `dwh schema diff` says), they
  reach staging and the marts.
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
from loaders.build import DbtError
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


def test_source_schema_change_case(case_settings):
    s = case_settings
    fill_source(s, CASE / "csv")
    pipeline.extract(s, quiet(), "auto")
    pipeline.load(s, quiet())
    for name in ("a_add_column.sql", "b_widen_decimal.sql", "c_rename_column.sql"):
        run_sql_file(s, name)

    lines: list[str] = []
    rep = Reporter(echo=lines.append)
    with pytest.raises(RunFailed):  # customers failed, the other tables went on (contract 13)
        pipeline.extract(s, rep, "auto")
    (failed,) = [o for o in rep.run.outcomes if o.stage == "extract" and o.status == "failed"]
    assert failed.unit == "customers" and str(failed.error).startswith(
        "table 'customers', column 'customer_city' (varchar(64)): declared but missing in the source "
        "(dropped, or renamed to 'customer_city_name'"
    )
    assert [x.split(":")[1].strip() for x in lines if x.startswith("  schema:")] == [
        "table 'customers', column 'customer_city' (varchar(64))",
        "table 'customers', column 'customer_city_name'",
        "table 'orders', column 'order_channel'",
        "table 'order_items', column 'price'",
    ]
    others = set(declared_tables(s.project_dir)) - {"customers"}
    assert {x.split()[0] for x in lines if " rows " in x} == others  # customers stopped, the others went on
    loads = pipeline.load(s, quiet())
    assert {r.table for r in loads if r.status == "loaded"} == others

    # raw: the new column (nullable, old rows NULL), the wide value exactly, the widened type
    assert latest(s, "orders", "order_id", "order_channel, order_status") == {
        ORDER: ("app", "shipped"),
        ITEM_ORDER: (None, "delivered"),
    }
    assert latest(s, "order_items", "order_id", "price")[ITEM_ORDER] == (Decimal("123456789.50"),)
    assert column_type(s, "raw", "order_items", "price") in ("decimal(12,2)", "numeric(12,2)")
    assert rows(
        s,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'raw' "
        "AND table_name = 'customers' AND column_name = 'customer_city_name'",
    ) == [(0,)]

    if s.warehouse == "duckdb":
        # before the declaration: the wide value does not fit the declared decimal(10,2), and the
        # build says so at the staging model (naming the column), instead of rounding it
        with pytest.raises(DbtError, match=r"stg_olist__order_items.*123456789\.50.*DECIMAL\(10,2\)"):
            pipeline.build(s, quiet())
        assert "order_channel" not in {r[0] for r in rows(s, "DESCRIBE staging.stg_olist__orders")}

    # a person declares both, as `dwh schema diff` shows, and rebuilds staging
    declare_order_channel(s.project_dir)
    edit(
        s.project_dir / SOURCES, '{name: price, data_type: "decimal(10,2)"', '{name: price, data_type: "decimal(12,2)"'
    )
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
