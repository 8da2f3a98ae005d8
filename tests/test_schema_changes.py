"""Source schema drift (issue 14, contract 12): every kind of change on both source engines.

Each test loads a baseline (historical extract and load), changes the source's schema as a shop
would (SQLite: ALTER TABLE, or a table rebuild for a new column type, which SQLite cannot
alter; MariaDB: ALTER TABLE), updates a few rows, and runs the next extract and load. A change
that evolves must bring every value intact (compared value by value with the source); a change
that stops must stop that table only, with one line naming table, column and types, and write
nothing for it.
"""

from __future__ import annotations

import re
from decimal import Decimal

import duckdb
import pytest
from click.testing import CliRunner

from loaders import layout, pipeline
from loaders.cli import main
from loaders.config import ConfigError, Settings
from loaders.declarations import LogicalType, declared_tables
from loaders.extract import read_watermark
from loaders.report import Reporter
from loaders.runs import RunFailed
from loaders.schema import compare
from loaders.schema.inspect import mysql_logical, sqlite_logical
from loaders.sources import open_source
from loaders.sources.sqlite import SQLITE_NOW
from loaders.store import ObjectStore

from .helpers import extract_and_load, fill_source, quiet

TABLES = ["products", "order_items", "sellers"]


@pytest.fixture(params=["sqlite", "mysql"])
def source_settings(request, settings: Settings) -> Settings:
    if request.param == "mysql":
        return settings.with_(source_url=request.getfixturevalue("mysql_url"))
    return settings


def _now(db) -> str:
    return SQLITE_NOW if db.name == "sqlite" else "CURRENT_TIMESTAMP(6)"


def retype(db, table: str, column: str, new_type: str) -> None:
    """Give a source column another type: MariaDB's ALTER TABLE ... MODIFY; on SQLite, which
    cannot alter a column's type, the table is rebuilt with the new type and its rows copied."""
    if db.name == "mysql":
        db.execute(f"ALTER TABLE `{table}` MODIFY `{column}` {new_type}")
        return
    (ddl,) = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))[0]
    ddl, n = re.subn(rf'("{column}") [A-Z]+(\(\d+(,\s*\d+)?\))?', rf"\1 {new_type}", ddl, count=1)
    assert n == 1, ddl
    ddl = ddl.replace(f'"{table}"', f'"{table}__new"', 1)
    with db.transaction():
        db.execute(ddl)
        db.execute(f'INSERT INTO "{table}__new" SELECT * FROM "{table}"')
        db.execute(f'DROP TABLE "{table}"')
        db.execute(f'ALTER TABLE "{table}__new" RENAME TO "{table}"')


def first_keys(db, table: str, n: int = 3) -> list[tuple]:
    t = declared_tables(_project())[table]
    cols = ", ".join(db.quote(k) for k in t.primary_key)
    return [tuple(r) for r in db.execute(f"SELECT {cols} FROM {db.quote(table)} ORDER BY {cols} LIMIT {n}")]


def update(db, table: str, column: str, value: object, keys: list[tuple]) -> None:
    t = declared_tables(_project())[table]
    p = db.paramstyle
    where = " AND ".join(f"{db.quote(k)} = {p}" for k in t.primary_key)
    for key in keys:
        db.execute(
            f"UPDATE {db.quote(table)} SET {db.quote(column)} = {p}, {db.quote('updated_at')} = {_now(db)} "
            f"WHERE {where}",
            (str(value) if isinstance(value, Decimal) else value, *key),
        )


def _project():
    from loaders.config import PROJECT_DIR

    return PROJECT_DIR


def source_values(s: Settings, table: str, column: str) -> dict[tuple, object]:
    t = declared_tables(s.project_dir)[table]
    with open_source(s.source_url) as db:
        cols = ", ".join(db.quote(c) for c in (*t.primary_key, column))
        return {tuple(r[:-1]): r[-1] for r in db.execute(f"SELECT {cols} FROM {db.quote(table)}")}


def raw_latest(s: Settings, table: str, column: str) -> dict[tuple, object]:
    """The latest version of every key in raw (what staging would pick), with `column`."""
    t = declared_tables(s.project_dir)[table]
    keys = ", ".join(f'"{k}"' for k in t.primary_key)
    sql = (
        f'SELECT {keys}, "{column}" FROM (SELECT *, row_number() OVER (PARTITION BY {keys} '
        f'ORDER BY "{t.cursor}" DESC, _batch_id DESC) AS rn FROM raw."{table}") WHERE rn = 1'
    )
    with duckdb.connect(s.duckdb_path, read_only=True) as con:
        return {tuple(r[:-1]): r[-1] for r in con.execute(sql).fetchall()}


def raw_type(s: Settings, table: str, column: str) -> str:
    with duckdb.connect(s.duckdb_path, read_only=True) as con:
        ((data_type,),) = con.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ? "
            "AND column_name = ?",
            [table, column],
        ).fetchall()
        return str(data_type)


def _same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(str(a)) == Decimal(str(b))
    return str(a) == str(b) if isinstance(a, str) or isinstance(b, str) else a == b


def assert_intact(s: Settings, table: str, column: str) -> None:
    source, raw = source_values(s, table, column), raw_latest(s, table, column)
    assert set(source) == set(raw)
    wrong = {k: (source[k], raw[k]) for k in source if not _same(source[k], raw[k])}
    assert not wrong


def batches(s: Settings, table: str) -> list[str]:
    store = ObjectStore(s.store_url, s)
    return sorted(store.glob(layout.manifest_glob(table)))


@pytest.fixture
def baseline(source_settings, olist_csv):
    s = source_settings.with_(lookback_seconds=0)  # the next extract reads the changed rows only
    fill_source(s, olist_csv, TABLES)
    extract_and_load(s, "auto", TABLES)
    return s


# -- changes that evolve ----------------------------------------------------------------------

EVOLVING = {
    # kind: (table, column, new source type (None: a new column), value written, raw type on DuckDB)
    "add": ("products", "product_origin", "VARCHAR(16)", "BR-app", "VARCHAR"),
    "widen_varchar": ("products", "product_category_name", "VARCHAR(200)", "x" * 150, "VARCHAR"),
    "widen_decimal": ("order_items", "price", "DECIMAL(12,2)", Decimal("123456789.50"), "DECIMAL(12,2)"),
    "widen_int": ("products", "product_weight_g", "BIGINT", 5_000_000_000, "BIGINT"),
}


@pytest.mark.parametrize("kind", list(EVOLVING))
def test_change_evolves_with_every_value_intact(baseline, kind):
    s = baseline
    table, column, new_type, value, raw_sql_type = EVOLVING[kind]
    with open_source(s.source_url) as db:
        if kind == "add":
            db.execute(f"ALTER TABLE {db.quote(table)} ADD COLUMN {db.quote(column)} {new_type}")
        else:
            retype(db, table, column, new_type)
        keys = first_keys(db, table)
        update(db, table, column, value, keys)
    lines: list[str] = []
    rep = Reporter(echo=lines.append)
    reports = pipeline.extract(s, rep, "auto", TABLES)
    (changed,) = [r for r in reports if r.table == table]
    assert changed.rows == len(keys)
    (line,) = [x for x in lines if "schema:" in x]
    assert f"table {table!r}, column {column!r}" in line
    assert ("new in the source" if kind == "add" else "widened in the source") in line
    schema_units = [o for o in rep.run.outcomes if o.stage == "schema"]
    assert [(o.unit, o.status) for o in schema_units] == [(f"{table}.{column}", "succeeded")]
    assert schema_units[0].error == line.strip().removeprefix("schema: ")
    pipeline.load(s, quiet(), TABLES)  # ingests the extract's run records: the line is in the run history
    with duckdb.connect(s.duckdb_path, read_only=True) as con:
        history = con.execute(
            "SELECT unit_name, status, error_message FROM raw._run_history WHERE stage = 'schema'"
        ).fetchall()
    assert history == [(f"{table}.{column}", "succeeded", schema_units[0].error)]
    assert raw_type(s, table, column) == raw_sql_type
    assert_intact(s, table, column)  # the new value where it was written, the old ones elsewhere
    assert {raw_latest(s, table, column)[k] for k in keys} == {value}
    for other in ("sellers", "order_items" if table == "products" else "products"):
        assert_intact(s, other, declared_tables(s.project_dir)[other].column_names[1])
    # the table keeps loading: one more change under the new schema
    with open_source(s.source_url) as db:
        update(db, table, column, value, first_keys(db, table, 5))
    extract_and_load(s, "auto", [table])
    assert_intact(s, table, column)


# -- changes that stop ------------------------------------------------------------------------

STOPPING = {
    # kind: (table, column, what to do to it, words the line must have)
    "drop": ("products", "product_photos_qty", "drop", ["'product_photos_qty' (integer)", "missing in the source"]),
    "rename": (
        "products",
        "product_category_name",
        "rename",
        ["'product_category_name' (varchar(64))", "renamed to 'category_name'"],
    ),
    "narrow": ("order_items", "price", "DECIMAL(8,2)", ["'price'", "narrowed", "decimal(10,2) to decimal(8,2)"]),
    "change_type": ("products", "product_photos_qty", "VARCHAR(8)", ["type changed", "integer to varchar(8)"]),
}


@pytest.mark.parametrize("kind", list(STOPPING))
def test_breaking_change_stops_that_table_only(baseline, kind):
    s = baseline
    table, column, action, words = STOPPING[kind]
    declared = declared_tables(s.project_dir)[table]
    with open_source(s.source_url) as db:
        q = db.quote
        if action == "drop":
            db.execute(f"ALTER TABLE {q(table)} DROP COLUMN {q(column)}")
        elif action == "rename":
            db.execute(f"ALTER TABLE {q(table)} RENAME COLUMN {q(column)} TO {q('category_name')}")
        else:
            retype(db, table, column, action)
        seller = first_keys(db, "sellers", 1)
        update(db, "sellers", "seller_city", "nova cidade", seller)
    store = ObjectStore(s.store_url, s)
    before, watermark = batches(s, table), read_watermark(store, declared)
    lines: list[str] = []
    rep = Reporter(echo=lines.append)
    with pytest.raises(RunFailed) as info:  # the stage ends naming every failed unit (contract 13)
        pipeline.extract(s, rep, "auto", TABLES)
    outcomes = {(o.stage, o.unit): o for o in rep.run.outcomes}
    message = outcomes[("extract", table)].error
    assert message is not None and message in str(info.value) and "\n" not in str(info.value)
    assert message.startswith(f"table {table!r}, column {column!r}")
    assert f"extract of {table!r} stopped" in message
    for w in words:
        assert w in message
    # nothing written for the stopped table: no batch, the watermark where it was
    assert batches(s, table) == before
    assert read_watermark(store, declared) == watermark
    assert outcomes[("extract", table)].status == "failed"
    assert outcomes[("schema", f"{table}.{column}")].status == "failed"
    assert outcomes[("schema", f"{table}.{column}")].error == message
    # the other tables went on: the seller's change is extracted and loads
    assert outcomes[("extract", "sellers")].status == "succeeded"
    assert outcomes[("extract", "sellers")].rows == 1
    pipeline.load(s, quiet(), TABLES)
    assert raw_latest(s, "sellers", "seller_city")[seller[0]] == "nova cidade"


def test_sqlite_rename_is_one_line_without_traceback(settings, olist_csv):
    fill_source(settings, olist_csv, ["sellers"])
    extract_and_load(settings, "auto", ["sellers"])
    with open_source(settings.source_url) as db:
        db.execute('ALTER TABLE "sellers" RENAME COLUMN "seller_city" TO "city"')
    env = {"DWH_DATA_DIR": str(settings.data_dir)}
    result = CliRunner().invoke(main, ["extract", "--table", "sellers"], env=env)
    assert result.exit_code == 1
    (error,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert error.startswith("error: 2 unit(s) failed: extract sellers failed: ")
    assert (
        "table 'sellers', column 'seller_city' (varchar(64)): declared but missing in the source "
        "(dropped, or renamed to 'city': a rename shows as a drop plus a new column): extract of 'sellers' "
        "stopped; restore the column in the source, or remove it from models/staging/olist/_olist__sources.yml "
        "and stg_olist__sellers.sql (raw keeps it, NULL from then on)"
    ) in error
    assert "Traceback" not in result.output


# -- freeze -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["add", "widen_decimal"])
def test_freeze_stops_even_an_addition_or_a_widening(baseline, kind):
    s = baseline.with_(schema_changes="freeze")
    table, column, new_type, value, _ = EVOLVING[kind]
    with open_source(s.source_url) as db:
        if kind == "add":
            db.execute(f"ALTER TABLE {db.quote(table)} ADD COLUMN {db.quote(column)} {new_type}")
        else:
            retype(db, table, column, new_type)
        update(db, table, column, value, first_keys(db, table))
    before = batches(s, table)
    with pytest.raises(RunFailed, match=rf"column '{column}'.*DWH_SCHEMA_CHANGES=freeze"):
        pipeline.extract(s, quiet(), "auto", [table, "sellers"])
    assert batches(s, table) == before


def test_policy_setting_is_checked():
    with pytest.raises(ConfigError, match="DWH_SCHEMA_CHANGES='allow': use evolve or freeze"):
        Settings.from_env({"DWH_SCHEMA_CHANGES": "allow"})


# -- the classification itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "verdict"),
    [
        ("varchar(16)", "varchar(64)", "widened"),
        ("varchar(64)", "text", "widened"),
        ("char(32)", "varchar(32)", "same"),
        ("varchar(64)", "varchar(8)", "narrowed"),
        ("text", "varchar(200)", "narrowed"),
        ("integer", "bigint", "widened"),
        ("bigint", "integer", "narrowed"),
        ("decimal(10,2)", "decimal(12,2)", "widened"),
        ("decimal(10,2)", "decimal(12,4)", "widened"),
        ("decimal(10,2)", "decimal(10,4)", "narrowed"),
        ("decimal(10,2)", "decimal(8,2)", "narrowed"),
        ("integer", "decimal(12,2)", "widened"),
        ("integer", "decimal(10,2)", "narrowed"),
        ("integer", "double", "widened"),
        ("decimal(10,2)", "double", "narrowed"),
        ("integer", "varchar(8)", "changed"),
        ("timestamp", "timestamp(6)", "same"),
        ("timestamp", "varchar(32)", "changed"),
    ],
)
def test_type_changes_are_classified(old, new, verdict):
    assert compare(LogicalType.parse(old), LogicalType.parse(new)) == verdict


def test_catalog_types_read_back_as_logical_types():
    assert sqlite_logical("VARCHAR(200)") == LogicalType("varchar", 200)
    assert sqlite_logical("DECIMAL(12, 2)") == LogicalType("decimal", 12, 2)
    assert sqlite_logical("BIGINT") == LogicalType("bigint")
    assert sqlite_logical("DATE") is None
    assert mysql_logical("decimal", "decimal(12,2)", None, 12, 2) == LogicalType("decimal", 12, 2)
    assert mysql_logical("int", "int(10) unsigned", None, 10, 0) == LogicalType("bigint")
    assert mysql_logical("datetime", "datetime(6)", None, None, None) == LogicalType("timestamp", 6)
    assert mysql_logical("json", "json", None, None, None) is None


def test_postgres_raw_takes_additions_and_widenings(pg_settings, olist_csv):
    """The same evolution on PostgreSQL: ADD COLUMN and ALTER COLUMN ... TYPE, values intact."""
    import psycopg2

    s = pg_settings.with_(lookback_seconds=0)
    fill_source(s, olist_csv, ["products"])
    extract_and_load(s, "auto", ["products"])
    with open_source(s.source_url) as db:
        db.execute('ALTER TABLE "products" ADD COLUMN "product_origin" VARCHAR(16)')
        retype(db, "products", "product_category_name", "VARCHAR(200)")
        retype(db, "products", "product_weight_g", "BIGINT")
        keys = first_keys(db, "products")
        for column, value in EVOLVING_VALUES.items():
            update(db, "products", column, value, keys)
    extract_and_load(s, "auto", ["products"])
    with psycopg2.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, dbname=s.pg_database) as conn:
        cur = conn.cursor()
        cur.execute(
            "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'products' AND column_name = ANY(%s) ORDER BY 1",
            (list(EVOLVING_VALUES),),
        )
        assert cur.fetchall() == [
            ("product_category_name", "character varying", 200),
            ("product_origin", "character varying", 16),
            ("product_weight_g", "bigint", None),
        ]
        for column, value in EVOLVING_VALUES.items():
            source = source_values(s, "products", column)
            cur.execute(
                f'SELECT DISTINCT ON (product_id) product_id, "{column}" FROM raw.products '
                "ORDER BY product_id, updated_at DESC, _batch_id DESC"
            )
            raw = {(r[0],): r[1] for r in cur.fetchall()}
            assert raw == source
            assert {raw[k] for k in keys} == {value}


EVOLVING_VALUES = {"product_origin": "BR-app", "product_category_name": "x" * 150, "product_weight_g": 5_000_000_000}


def test_scheduled_run_loads_the_other_tables_then_fails(settings, olist_csv, monkeypatch):
    s = settings.with_(lookback_seconds=0)
    fill_source(s, olist_csv, ["sellers", "products"])
    extract_and_load(s, "auto", ["sellers", "products"])
    with open_source(s.source_url) as db:
        db.execute('ALTER TABLE "products" DROP COLUMN "product_photos_qty"')
        seller = first_keys(db, "sellers", 1)
        update(db, "sellers", "seller_city", "nova cidade", seller)
    done: list[str] = []
    monkeypatch.setattr(pipeline, "funnel_convert", lambda *a, **k: done.append("funnel"))
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: done.append("build"))
    monkeypatch.setattr(pipeline, "dashboard", lambda *a, **k: done.append("dashboard"))
    with pytest.raises(RunFailed, match="'products', column 'product_photos_qty'"):
        pipeline.run(s, quiet(), ["sellers", "products"])
    assert done == ["funnel", "build", "dashboard"]
    assert raw_latest(s, "sellers", "seller_city")[seller[0]] == "nova cidade"


def test_new_column_without_a_warehouse_type_is_reported_and_left_out(baseline):
    s = baseline
    with open_source(s.source_url) as db:
        db.execute("ALTER TABLE sellers ADD COLUMN opened_on DATE")
        update(db, "sellers", "opened_on", "2026-11-30", first_keys(db, "sellers", 2))
    lines: list[str] = []
    (report,) = pipeline.extract(s, Reporter(echo=lines.append), "auto", ["sellers"])
    assert [x for x in lines if "schema:" in x] == [
        "  schema: table 'sellers', column 'opened_on': new in the source (DATE), not declared: not extracted, "
        "no warehouse type holds DATE"
    ]
    (path,) = [p for p in batches(s, "sellers") if report.batch_id and report.batch_id in p]
    manifest = ObjectStore(s.store_url, s).read_json(path)
    assert report.rows == 2 and "opened_on" not in [c["name"] for c in manifest["columns"]]
