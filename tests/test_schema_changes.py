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
    # kind: (table, column, new source type (None: a new column), value written, raw type on DuckDB);
    # a widening's value needs the wider source type's room but fits the declared type (at its edge)
    "add": ("products", "product_origin", "VARCHAR(16)", "BR-app", "VARCHAR"),
    "widen_varchar": ("products", "product_category_name", "VARCHAR(200)", "ã" * 64, "VARCHAR"),
    "widen_decimal": ("order_items", "price", "DECIMAL(12,2)", Decimal("-99999999.99"), "DECIMAL(12,2)"),
    "widen_int": ("products", "product_weight_g", "BIGINT", 2_147_483_647, "BIGINT"),
}

TOO_WIDE_PRICE = Decimal("123456789.50")
WIDENING = {
    # kind: (table, column, new source type, a value that does not fit the declared type, that
    # type, the source's type as the declarations spell it)
    "widen_varchar": ("products", "product_category_name", "VARCHAR(200)", "ã" * 65, "varchar(64)", "varchar(200)"),
    "widen_decimal": (
        "order_items",
        "price",
        "DECIMAL(12,2)",
        Decimal("123456789.50"),
        "decimal(10,2)",
        "decimal(12,2)",
    ),
    "widen_int": ("products", "product_weight_g", "BIGINT", 5_000_000_000, "integer", "bigint"),
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


# -- a widening whose value does not fit the declared type ------------------------------------

STAGING = {"product_category_name": "category_name", "product_weight_g": "weight_g", "price": "price"}
SOURCES_YAML = "models/staging/olist/_olist__sources.yml"


def not_fitting_line(s: Settings, kind: str, key: tuple) -> str:
    """The one line of WIDENING[kind]'s value stopping its table (loaders/schema/policy.py)."""
    table, column, _, value, old, new = WIDENING[kind]
    names = declared_tables(s.project_dir)[table].primary_key
    shown = repr(value[:60] + "...") if isinstance(value, str) else str(value)
    where = ", ".join(f"{n}={v!r}" for n, v in zip(names, key, strict=True))
    return (
        f"table {table!r}, column {column!r}, key ({where}): {shown} "
        f"does not fit the declared {old} (the source widened the column to {new}): extract of {table!r} stopped, "
        f"nothing written; declare the wider type in {SOURCES_YAML}, table {table}: "
        f'`- {{name: {column}, data_type: "{new}", ...}}` (every step: `dwh schema diff --table {table}`), '
        "or fix the row in the source: the next run extracts it again"
    )


def declare(s: Settings, table: str, column: str, old: str, new: str) -> None:
    """Change a column's data_type in the project copy's sources YAML, as the line says."""
    path = s.project_dir / SOURCES_YAML
    text = path.read_text(encoding="utf-8")
    start = text.index(f"      - name: {table}\n")
    head, rest = text[:start], text[start:]
    before = f'{{name: {column}, data_type: "{old}"'
    assert before in rest
    path.write_text(head + rest.replace(before, f'{{name: {column}, data_type: "{new}"', 1), encoding="utf-8")
    declared_tables.cache_clear()  # a new `dwh` run reads the declarations again


@pytest.mark.parametrize("kind", list(WIDENING))
def test_value_beyond_the_declared_type_stops_the_table_until_declared(source_settings, olist_csv, tmp_path, kind):
    """(ii) A widened column's value that does not fit the declared type stops its table with one
    line, nothing written, the other tables flowing; (iii) once the wider type is declared, the
    next extract carries it exactly into raw and staging."""
    from loaders.build.dbt_runner import run_dbt

    from .test_schema_cases import project_copy

    s = source_settings.with_(lookback_seconds=0, project_dir=project_copy(_project(), tmp_path / "project"))
    fill_source(s, olist_csv, TABLES)
    extract_and_load(s, "auto", TABLES)
    table, column, new_type, value, old, new = WIDENING[kind]
    declared = declared_tables(s.project_dir)[table]
    with open_source(s.source_url) as db:
        retype(db, table, column, new_type)
        keys = first_keys(db, table, 3)
        update(db, table, column, EVOLVING[kind][3], keys[1:])  # these fit: alone, they would flow
        update(db, table, column, value, keys[:1])
        seller = first_keys(db, "sellers", 1)
        update(db, "sellers", "seller_city", "nova cidade", seller)
    store = ObjectStore(s.store_url, s)
    before, watermark, raw_before = batches(s, table), read_watermark(store, declared), raw_latest(s, table, column)
    raw_type_before = raw_type(s, table, column)
    lines: list[str] = []
    rep = Reporter(echo=lines.append)
    with pytest.raises(RunFailed) as info:
        pipeline.extract(s, rep, "auto", TABLES)
    line = not_fitting_line(s, kind, keys[0])
    assert str(info.value) == f"1 unit(s) failed: extract {table} failed: {line}"
    # one line and one unit for the table: no `schema:` line or unit besides its failure
    (shown,) = [x for x in lines if repr(column) in x]
    assert shown.split() == [table, "FAILED:", *line.split()]
    assert [(o.stage, o.unit) for o in rep.run.outcomes if o.unit.startswith(table)] == [("extract", table)]
    assert [(o.stage, o.unit, o.status) for o in rep.run.outcomes if o.status != "succeeded"] == [
        ("extract", table, "failed")
    ]
    # nothing half-written: no batch, the watermark where it was, raw as it was (and as narrow)
    assert batches(s, table) == before
    assert read_watermark(store, declared) == watermark
    assert [o.rows for o in rep.run.outcomes if o.unit == "sellers"] == [1]
    pipeline.load(s, quiet(), TABLES)
    assert raw_latest(s, "sellers", "seller_city")[seller[0]] == "nova cidade"
    assert raw_latest(s, table, column) == raw_before
    assert raw_type(s, table, column) == raw_type_before

    # (iii) the person declares the wider type as the line says: the next run carries the value
    declare(s, table, column, old, new)
    lines.clear()
    (report,) = pipeline.extract(s, Reporter(echo=lines.append), "auto", [table])
    assert report.rows == len(keys) and not [x for x in lines if "schema:" in x]
    pipeline.load(s, quiet(), [table])
    assert raw_type(s, table, column) == EVOLVING[kind][4]
    assert_intact(s, table, column)
    assert raw_latest(s, table, column)[keys[0]] == value
    run_dbt(s, ["run", "--full-refresh", "--select", f"stg_olist__{table}"], quiet=True)
    names = declared.primary_key
    where = " AND ".join(f"{n} = ?" for n in names)
    with duckdb.connect(s.duckdb_path, read_only=True) as con:
        staged = [
            con.execute(f"SELECT {STAGING[column]} FROM staging.stg_olist__{table} WHERE {where}", list(k)).fetchall()
            for k in keys
        ]
    assert staged == [[(value,)], [(EVOLVING[kind][3],)], [(EVOLVING[kind][3],)]]


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
    # one unit and one line for the stopped table: its failure (no `schema` unit or line besides)
    assert [u for st, u in outcomes if u.startswith(table)] == [table]
    assert str(info.value) == f"1 unit(s) failed: extract {table} failed: {message}"
    assert [x for x in lines if repr(column) in x] == [f"  {table:<34} FAILED: {message}"]
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
    assert error.startswith("error: 1 unit(s) failed: extract sellers failed: ")
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


@pytest.mark.parametrize("source", ["sqlite", "mysql"])
def test_postgres_raw_takes_additions_and_widenings(pg_settings, olist_csv, tmp_path, request, source):
    """The same on PostgreSQL, every widening at once: (i) ADD COLUMN and ALTER COLUMN ... TYPE,
    values intact; (ii) values beyond the declared types stop their tables, nothing written; (iii)
    each declared in turn, the values reach raw and staging exactly (PostgreSQL's cast to a
    shorter VARCHAR would cut a string without a word: it never gets the chance)."""
    from loaders.build.dbt_runner import run_dbt

    from .test_schema_cases import project_copy, rows

    s = pg_settings.with_(lookback_seconds=0, project_dir=project_copy(_project(), tmp_path / "project"))
    if source == "mysql":
        s = s.with_(source_url=request.getfixturevalue("mysql_url"))
    tables = ["products", "order_items", "sellers"]
    fill_source(s, olist_csv, tables)
    extract_and_load(s, "auto", tables)
    widened = {k: WIDENING[k] for k in ("widen_varchar", "widen_int", "widen_decimal")}
    with open_source(s.source_url) as db:
        db.execute(f"ALTER TABLE {db.quote('products')} ADD COLUMN {db.quote('product_origin')} VARCHAR(16)")
        for _, (table, column, new_type, *_rest) in widened.items():
            retype(db, table, column, new_type)
        keys = {t: first_keys(db, t) for t in ("products", "order_items")}
        update(db, "products", "product_origin", "BR-app", keys["products"])
        for kind, (table, column, *_rest) in widened.items():
            update(db, table, column, EVOLVING[kind][3], keys[table])
    extract_and_load(s, "auto", tables)
    assert rows(
        s,
        "SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
        "FROM information_schema.columns WHERE table_schema = 'raw' AND column_name IN "
        "('product_category_name', 'product_origin', 'product_weight_g', 'price') ORDER BY 1, 2",
    ) == [
        ("order_items", "price", "numeric", None, 12, 2),
        ("product_category_name_translation", "product_category_name", "character varying", 64, None, None),
        ("products", "product_category_name", "character varying", 200, None, None),
        ("products", "product_origin", "character varying", 16, None, None),
        ("products", "product_weight_g", "bigint", None, 64, 0),
    ]

    def raw_values(table: str, column: str) -> dict[tuple, object]:
        t = declared_tables(s.project_dir)[table]
        k = ", ".join(t.primary_key)
        latest = rows(
            s,
            f'SELECT DISTINCT ON ({k}) {k}, "{column}" FROM raw.{table} ORDER BY {k}, updated_at DESC, _batch_id DESC',
        )
        return {tuple(r[:-1]): r[-1] for r in latest}

    def intact(table: str, column: str) -> None:
        raw, source = raw_values(table, column), source_values(s, table, column)
        assert set(raw) == set(source)
        assert not {k: (source[k], raw[k]) for k in source if not _same(source[k], raw[k])}

    for table, column in [("products", "product_origin"), *[(w[0], w[1]) for w in widened.values()]]:
        intact(table, column)

    # (ii) values beyond the declared types: both tables stop, one line each; sellers go on
    with open_source(s.source_url) as db:
        for i, (table, column, _, value, *_rest) in enumerate(widened.values()):
            update(db, table, column, value, keys[table][i % 2 : i % 2 + 1])
        seller = first_keys(db, "sellers", 1)
        update(db, "sellers", "seller_city", "nova cidade", seller)
    before = {t: raw_values(t, "updated_at") for t in ("products", "order_items")}
    rep = Reporter(echo=lambda _line: None)
    with pytest.raises(RunFailed) as info:
        pipeline.extract(s, rep, "auto", tables)
    assert str(info.value) == (
        f"2 unit(s) failed: extract products failed: {not_fitting_line(s, 'widen_varchar', keys['products'][0])}; "
        f"extract order_items failed: {not_fitting_line(s, 'widen_decimal', keys['order_items'][0])}"
    )
    pipeline.load(s, quiet(), tables)
    assert raw_values("sellers", "seller_city")[seller[0]] == "nova cidade"
    assert {t: raw_values(t, "updated_at") for t in before} == before  # nothing of either table

    # (iii) declared in turn: products then stops at its next column, then every value flows
    declare(s, "products", "product_category_name", "varchar(64)", "varchar(200)")
    with pytest.raises(RunFailed, match="extract products failed: table 'products', column 'product_weight_g'"):
        pipeline.extract(s, quiet(), "auto", ["products"])
    declare(s, "products", "product_weight_g", "integer", "bigint")
    declare(s, "order_items", "price", "decimal(10,2)", "decimal(12,2)")
    extract_and_load(s, "auto", tables)
    for table, column, _, value, *_rest in widened.values():
        intact(table, column)
        assert value in set(raw_values(table, column).values())
    run_dbt(s, ["run", "--full-refresh", "--select", "stg_olist__products", "stg_olist__order_items"], quiet=True)
    staged = rows(s, "SELECT category_name, weight_g FROM staging.stg_olist__products")
    assert ("ã" * 65, 2_147_483_647) in staged and ("ã" * 64, 5_000_000_000) in staged
    assert TOO_WIDE_PRICE in {r[0] for r in rows(s, "SELECT price FROM staging.stg_olist__order_items")}


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


def test_declared_bigint_needs_the_mart_contract_that_diff_names(settings, olist_csv, tmp_path):
    """INT -> BIGINT declared in the sources reaches dim_product, whose enforced contract lists
    weight_g as integer: dbt refuses the model until the contract says bigint. `dwh schema diff`
    names that contract line before the declaration; changed as it says, the value reaches the mart."""
    from loaders.build import DbtError
    from loaders.build.dbt_runner import run_dbt

    from .test_schema_cases import edit, project_copy

    s = settings.with_(lookback_seconds=0, project_dir=project_copy(_project(), tmp_path / "project"))
    fill_source(s, olist_csv, ["products"])
    extract_and_load(s, "auto", ["products"])
    with open_source(s.source_url) as db:
        retype(db, "products", "product_weight_g", "BIGINT")
        (key,) = first_keys(db, "products", 1)
        update(db, "products", "product_weight_g", 5_000_000_000, [key])
    lines: list[str] = []
    pipeline.schema_diff(s, Reporter(echo=lines.append), ["products"])
    assert lines[-6:] == [
        "      1. in models/staging/olist/_olist__sources.yml, table products, the line of column product_weight_g:",
        '          - {name: product_weight_g, data_type: "bigint", ...}',
        "      2. in models/marts/_marts__models.yml, model dim_product, column weight_g (its contract lists integer; "
        "a cast to it in models/marts/dim_product.sql too):",
        "          data_type: bigint",
        "      3. dwh extract; dwh load; dwh build --full-refresh --select stg_olist__products+",
        "         (the staging model and what reads it are rebuilt with the wider type)",
    ]
    declare(s, "products", "product_weight_g", "integer", "bigint")
    extract_and_load(s, "auto", ["products"])
    run_dbt(s, ["seed", "--select", "category_name_translation"], quiet=True)
    models = ["run", "--full-refresh", "--select", "stg_olist__products", "dim_product"]
    with pytest.raises(DbtError, match="model dim_product .* enforced contract that failed"):
        run_dbt(s, models, quiet=True)
    edit(
        s.project_dir / "models/marts/_marts__models.yml",
        "{name: weight_g, data_type: integer,",
        "{name: weight_g, data_type: bigint,",
    )
    run_dbt(s, models, quiet=True)
    with duckdb.connect(s.duckdb_path, read_only=True) as con:
        assert con.execute("SELECT weight_g FROM marts.dim_product WHERE product_id = ?", [key[0]]).fetchall() == [
            (5_000_000_000,)
        ]


@pytest.mark.parametrize(
    ("declared", "source", "values", "first_bad"),
    [
        ("varchar(4)", "varchar(8)", ["ãããã", None, "abcde"], 2),  # characters, not bytes
        ("char(2)", "text", ["ab", "abc"], 1),
        ("decimal(10,2)", "decimal(12,2)", [Decimal("-99999999.99"), None, Decimal("100000000.00")], 2),
        ("decimal(10,2)", "decimal(12,4)", [Decimal("1.2000"), Decimal("1.2345")], 1),  # staging would round
        ("integer", "bigint", [2_147_483_647, -2_147_483_648, -2_147_483_649], 2),
        ("integer", "decimal(12,2)", [Decimal("5.00"), Decimal("5.50")], 1),
        ("integer", "double", [3.0, 3.5], 1),
        ("varchar(4)", "varchar(8)", ["abcd", None], None),
        ("integer", "bigint", [-2_147_483_648, 2_147_483_647], None),
    ],
)
def test_widened_values_are_checked_against_the_declared_type(declared, source, values, first_bad):
    """Every widening the policy evolves, its values checked as staging will cast them."""
    import pyarrow as pa

    from loaders.declarations import Column, Table
    from loaders.extract.values import check_declared
    from loaders.schema import SchemaChangeError, SourceColumn, plan_table

    t = Table(
        "things",
        "things.csv",
        (Column("id", LogicalType("integer")), Column("v", LogicalType.parse(declared))),
        ("id",),
        "id",
        "id",
    )
    wide = LogicalType.parse(source)
    plan = plan_table(
        "mysql", t, [SourceColumn("id", "int", LogicalType("integer")), SourceColumn("v", source, wide)], "evolve"
    )
    assert [c.kind for c in plan.widened] == ["widened"]
    batch = pa.record_batch(
        [pa.array(range(10, 10 + len(values)), pa.int32()), pa.array(values, wide.arrow())],
        schema=plan.table.arrow_schema(),
    )
    if first_bad is None:
        check_declared(batch, plan)
        return
    with pytest.raises(SchemaChangeError) as info:
        check_declared(batch, plan)
    assert str(info.value).startswith(f"table 'things', column 'v', key (id={10 + first_bad}): ")
    assert f"does not fit the declared {declared} (the source widened the column to {source})" in str(info.value)
