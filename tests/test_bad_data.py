"""Bad data never blocks the pipeline (issue 17, contract 13): a catalogue of bad values, batches
and files, each with its exact outcome through the CLI: the line printed, the exit status, what
was loaded, what was set aside, and that the next normal run proceeds.

The inputs are the small CSV sets of the shared cases `whitespace-only-text` (valid, with
whitespace-only text) and `zero-in-date` (one order with day 00), kept in tests/cases/.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
import pytest
from click.testing import CliRunner, Result

from loaders import layout
from loaders.cli import main
from loaders.config import Settings
from loaders.sources import open_source

from .conftest import MYSQL_HOST, MYSQL_PORT

CASES = Path(__file__).parent / "cases"
BASE = CASES / "whitespace-only-text"
TABLES = 9
ORDER_1, ORDER_2 = "6e7f85a9d0fe9b5dfb504c6f2991d744", "18899d7d59a5ab5aa0dff9fca8604ece"
LOADED = "nothing was loaded (the source is as it was)"


# -- fixtures and helpers ---------------------------------------------------------------------
@dataclass
class Env:
    """One isolated pipeline: a data folder, a source and a warehouse, driven through the CLI."""

    data_dir: Path
    source_url: str
    warehouse: str = "duckdb"
    pg_database: str = "postgres"

    @property
    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            source_url=self.source_url,
            warehouse=self.warehouse,  # type: ignore[arg-type]  # one of WarehouseName, from the parametrization
            pg_database=self.pg_database,
        )

    def env(self) -> dict[str, str]:
        return {
            "DWH_DATA_DIR": str(self.data_dir),
            "DWH_SOURCE_URL": self.source_url,
            "DWH_WAREHOUSE": self.warehouse,
            "DWH_PG_DATABASE": self.pg_database,
            "DWH_LOG_FORMAT": "text",
        }

    def dwh(self, *args: str) -> Result:
        """`dwh <args>` in-process; the result has exit_code, stdout and stderr apart."""
        return CliRunner().invoke(main, list(args), env=self.env(), catch_exceptions=False)

    def dwh_process(self, *args: str) -> subprocess.CompletedProcess:
        """`dwh <args>` as a process of its own: what a user's terminal shows, native output included."""
        env = {**os.environ, **self.env(), "RUST_BACKTRACE": "1"}
        return subprocess.run(
            [sys.executable, "-m", "loaders.cli", *args], env=env, capture_output=True, text=True, timeout=300
        )

    def source(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run SQL on the source as the shop's application would (MySQL with a lax sql_mode)."""
        if self.source_url.startswith("sqlite"):
            with sqlite3.connect(self.source_url.removeprefix("sqlite:///")) as conn:
                return conn.execute(sql, params).fetchall()
        conn = pymysql.connect(
            host=MYSQL_HOST, port=MYSQL_PORT, user="root", database=self.source_url.rsplit("/", 1)[1], autocommit=True
        )
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_mode = ''")
                cur.execute(sql.replace("?", "%s"), params or None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def source_tables(self) -> set[str]:
        if self.source_url.startswith("sqlite"):
            path = Path(self.source_url.removeprefix("sqlite:///"))
            if not path.exists():
                return set()
            return {r[0] for r in self.source("SELECT name FROM sqlite_master WHERE type = 'table'")} - {
                "sqlite_sequence"
            }
        return {r[0] for r in self.source("SHOW TABLES")}

    def warehouse_rows(self, sql: str) -> list[tuple]:
        if self.warehouse == "duckdb":
            with duckdb.connect(self.settings.duckdb_path, read_only=True) as con:
                return con.execute(sql).fetchall()
        with psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=self.pg_database) as conn:
            cur = conn.cursor()
            cur.execute(sql)
            return cur.fetchall()

    def raw_count(self, table: str) -> int:
        return self.warehouse_rows(f'SELECT count(*) FROM raw."{table}"')[0][0]

    @property
    def store(self) -> Path:
        return self.data_dir / "store"


@pytest.fixture(params=["sqlite", "mysql"])
def source_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'source.sqlite'}"
    return request.getfixturevalue("mysql_url")


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request) -> tuple[str, str]:
    if request.param == "duckdb":
        return "duckdb", "postgres"
    return "postgres", request.getfixturevalue("pg_database")


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    out = tmp_path / "csv"
    shutil.copytree(BASE, out)
    return out


@pytest.fixture
def env(tmp_path: Path, source_url: str) -> Env:
    return Env(tmp_path / "data", source_url)


def set_field(path: Path, row: int, column: str, value: str) -> None:
    """Set one field of data row `row` (1 = the line after the header), quoting as needed."""
    with open(path, encoding="utf-8", newline="") as handle:
        records = list(csv.reader(handle))
    records[row][records[0].index(column)] = value
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(records)


def loaded_source(env: Env, csv_dir: Path) -> None:
    result = env.dwh("source", "load", "--csv-dir", str(csv_dir))
    assert result.exit_code == 0, result.output


def stdout_lines(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.strip()]


# -- kind 1: values a stage cannot represent, refused at source load --------------------------
BAD_FIELDS = [
    # (id, file, data row, column, value, the rest of the one line after the value)
    (
        "zero-in-date",
        "olist_orders_dataset.csv",
        1,
        "order_delivered_carrier_date",
        "2017-10-00 19:55:00",
        "is not a valid timestamp (day is out of range for month)",
    ),
    (
        "timestamp-as-free-text",
        "olist_orders_dataset.csv",
        2,
        "order_approved_at",
        "10/2/2017 10:56",
        "is not a timestamp (YYYY-MM-DD HH:MM:SS)",
    ),
    (
        "february-30",
        "olist_orders_dataset.csv",
        2,
        "order_purchase_timestamp",
        "2018-02-30 10:00:00",
        "is not a valid timestamp (day is out of range for month)",
    ),
    (
        "year-before-1000",
        "olist_order_items_dataset.csv",
        1,
        "shipping_limit_date",
        "0999-01-01 00:00:00",
        "is before the year 1000 (MySQL DATETIME's range)",
    ),
    (
        "timestamp-fraction-rounded",
        "olist_order_reviews_dataset.csv",
        2,
        "review_answer_timestamp",
        "2018-08-08 18:37:50.5",
        "has more fraction digits than a timestamp(0) keeps (it would be rounded)",
    ),
    (
        "nul-in-text",
        "olist_order_reviews_dataset.csv",
        1,
        "review_comment_message",
        "a\x00b",
        "contains a NUL character, which PostgreSQL cannot store",
    ),
    (
        "char-too-long",
        "olist_customers_dataset.csv",
        2,
        "customer_unique_id",
        "2b3a3a0c854542319bab862bb9f6745bX",
        "is 33 characters long, more than char(32) holds",
    ),
    (
        "char-trailing-space",
        "olist_sellers_dataset.csv",
        1,
        "seller_zip_code_prefix",
        "1302 ",
        "ends with a space, which a MySQL char(5) column drops",
    ),
    (
        "varchar-too-long",
        "olist_orders_dataset.csv",
        1,
        "order_status",
        "delivered-to-the-neighbour",
        "is 26 characters long, more than varchar(16) holds",
    ),
    (
        "text-too-long",
        "olist_order_reviews_dataset.csv",
        2,
        "review_comment_message",
        "é" * 40_000,
        "is 80,000 bytes long, more than a text column holds (65,535)",
    ),
    (
        "integer-not-digits",
        "olist_order_reviews_dataset.csv",
        1,
        "review_score",
        "4.0",
        "is not an integer",
    ),
    (
        "integer-out-of-range",
        "olist_products_dataset.csv",
        1,
        "product_weight_g",
        "3000000000",
        "is out of the integer range (-2147483648..2147483647)",
    ),
    (
        "decimal-not-a-number",
        "olist_order_items_dataset.csv",
        2,
        "price",
        "12.5x",
        "is not a decimal(10,2)",
    ),
    (
        "decimal-more-places",
        "olist_order_payments_dataset.csv",
        1,
        "payment_value",
        "38.715",
        "has more than 2 decimal places (decimal(10,2) would round it)",
    ),
    (
        "decimal-out-of-range",
        "olist_order_items_dataset.csv",
        1,
        "freight_value",
        "123456789.00",
        "is out of the decimal(10,2) range",
    ),
    (
        "double-not-a-number",
        "olist_geolocation_dataset.csv",
        3,
        "geolocation_lat",
        "nan",
        "is not a number",
    ),
    (
        "double-out-of-range",
        "olist_geolocation_dataset.csv",
        1,
        "geolocation_lng",
        "1e999",
        "is out of the double range",
    ),
]


@pytest.mark.parametrize("file, row, column, value, reason", [pytest.param(*c[1:], id=c[0]) for c in BAD_FIELDS])
def test_a_bad_value_is_refused_at_source_load_naming_file_line_column_and_value(
    env, csv_dir, file, row, column, value, reason
):
    """The same one line on SQLite and MySQL; nothing is loaded; the repaired folder then loads
    without --replace."""
    original = (csv_dir / file).read_bytes()
    set_field(csv_dir / file, row, column, value)
    result = env.dwh("source", "load", "--csv-dir", str(csv_dir))
    shown = repr(value if len(value) <= 60 else value[:60] + "...")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {file}, line {row + 1}, column {column}: {shown} {reason}; {LOADED}"]
    assert "stored" not in result.stdout
    assert env.source_tables() == set()  # all or nothing, for the whole folder
    (csv_dir / file).write_bytes(original)
    again = env.dwh("source", "load", "--csv-dir", str(csv_dir))
    assert again.exit_code == 0, again.output
    assert len(env.source_tables()) == TABLES


def test_zero_in_date_case_refused_at_source_load(env):
    """Shared case zero-in-date, at the earliest stage: the source load names the value."""
    result = env.dwh("source", "load", "--csv-dir", str(CASES / "zero-in-date"))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: olist_orders_dataset.csv, line 2, column order_delivered_carrier_date: '2017-10-00 19:55:00' "
        f"is not a valid timestamp (day is out of range for month); {LOADED}"
    ]


@pytest.mark.parametrize(
    "file, damage, message",
    [
        pytest.param(
            "olist_orders_dataset.csv",
            lambda text: text[: text.rindex(",2018-07-26 03:24:27")],  # cut in the middle of the last row
            "olist_orders_dataset.csv, line 3: 4 fields, expected 8 (order_id, customer_id, order_status, "
            "order_purchase_timestamp, order_approved_at, order_delivered_carrier_date, "
            "order_delivered_customer_date, order_estimated_delivery_date); a row cut short or with an unquoted comma",
            id="row-cut-short",
        ),
        pytest.param(
            "olist_orders_dataset.csv",
            lambda text: text + text.splitlines(keepends=True)[1],
            f"olist_orders_dataset.csv, line 4: duplicate key (order_id={ORDER_1!r}), first on line 2",
            id="duplicate-key",
        ),
        pytest.param(
            "olist_orders_dataset.csv",
            lambda text: text.replace(ORDER_2, "", 1),
            "olist_orders_dataset.csv, line 3, column order_id: empty in a key column",
            id="empty-key",
        ),
    ],
)
def test_a_broken_file_is_refused_naming_the_line(env, csv_dir, file, damage, message):
    path = csv_dir / file
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    result = env.dwh("source", "load", "--csv-dir", str(csv_dir))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {message}; {LOADED}"]
    assert env.source_tables() == set()


@pytest.mark.parametrize(
    "ending",
    [
        pytest.param("\n\n", id="one-empty-line"),
        pytest.param("\r\n\r\n\n", id="empty-lines-mixed-endings"),
        pytest.param("", id="no-final-newline"),
    ],
)
def test_a_file_ending_in_empty_lines_or_without_newline_loads_every_row(env, csv_dir, ending):
    """Empty lines are not records (MySQL said "3 rows read but 3 would be stored")."""
    path = csv_dir / "olist_orders_dataset.csv"
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + ending, encoding="utf-8")
    result = env.dwh("source", "load", "--csv-dir", str(csv_dir))
    assert result.exit_code == 0, result.output
    (line,) = [x for x in stdout_lines(result) if x.split()[0] == "orders"]
    assert line.split()[1:6] == ["2", "rows", "read", "2", "stored"]
    assert env.source("SELECT order_id FROM orders ORDER BY 1") == [(ORDER_2,), (ORDER_1,)]


def test_a_failed_load_of_a_later_file_leaves_the_source_as_it_was_and_a_rerun_needs_no_flag(env, csv_dir):
    """The eighth file is bad: the seven loaded before it are undone too."""
    set_field(csv_dir / "olist_geolocation_dataset.csv", 2, "geolocation_state", "SPX")
    result = env.dwh("source", "load", "--csv-dir", str(csv_dir))
    assert result.exit_code == 1 and "olist_geolocation_dataset.csv, line 3, column geolocation_state" in result.stderr
    assert env.source_tables() == set()
    set_field(csv_dir / "olist_geolocation_dataset.csv", 2, "geolocation_state", "SP")
    assert env.dwh("source", "load", "--csv-dir", str(csv_dir)).exit_code == 0
    # --replace of a loaded source with a bad folder keeps the loaded rows
    set_field(csv_dir / "olist_orders_dataset.csv", 1, "order_status", "x" * 17)
    replaced = env.dwh("source", "load", "--replace", "--csv-dir", str(csv_dir))
    assert replaced.exit_code == 1
    assert env.source("SELECT count(*) FROM orders") == [(2,)] and len(env.source_tables()) == TABLES


# -- kind 2: text arrives exactly as written ------------------------------------------------
TEXTS = [" ", "   ", "ok ", "\t", " lead", "a\r\nb", "a\nb", "a\rb", '"quoted"', "back\\slash", "😀 emoji", ",;"]


def test_whitespace_only_text_case_is_kept_through_to_staging(env):
    """Shared case whitespace-only-text: ' ' stays ' ' and '   ' stays '   ' (MySQL's PAD SPACE
    made them NULL), in the source, raw and staging, on both source engines."""
    from loaders import pipeline

    from .helpers import quiet

    expected = [
        ("0c508dc5b8cd9ab6bc3d4f4b442a50c6", None, " "),
        ("78f6475b22de06cfce466b39e2596a9e", "   ", "ok "),
    ]
    assert env.dwh("source", "load", "--csv-dir", str(BASE)).exit_code == 0
    columns = "review_id, review_comment_title, review_comment_message"
    assert env.source(f"SELECT {columns} FROM order_reviews ORDER BY 1") == expected
    assert env.dwh("extract").exit_code == 0 and env.dwh("load").exit_code == 0
    assert env.warehouse_rows(f"SELECT {columns} FROM raw.order_reviews ORDER BY 1") == expected
    pipeline.build(
        env.settings,
        quiet(),
        ["--select", "stg_olist__order_reviews", "--resource-type", "model"],
        check_freshness=False,
    )
    assert env.warehouse_rows(f"SELECT {columns} FROM staging.stg_olist__order_reviews ORDER BY 1") == expected


def _review_file(path: Path) -> dict[str, str]:
    """The reviews file with one review per text, its lines ending in a mix of CRLF and LF, the
    last without a newline and empty lines after the header and at the end; returns id -> text."""
    header = (
        "review_id,order_id,review_score,review_comment_title,review_comment_message,"
        "review_creation_date,review_answer_timestamp"
    )
    expected, lines = {}, [header + "\r\n", "\n"]
    for i, text in enumerate(TEXTS):
        review_id = f"{i:032x}"
        expected[review_id] = text
        quoted = '"' + text.replace('"', '""') + '"'
        order = ORDER_1 if i % 2 else ORDER_2
        lines.append(f"{review_id},{order},5,,{quoted},2018-08-08 00:00:00,2018-08-08 18:37:50")
        lines.append("\r\n" if i % 2 else "\n")
    lines.append(f"{'f' * 32},{ORDER_1},1,,,2018-08-08 00:00:00,2018-08-08 18:37:50\n\n")  # empty: NULL
    lines.append(f'{"e" * 32},{ORDER_2},1,title,"",2018-08-08 00:00:00,2018-08-08 18:37:50')  # no newline
    expected["f" * 32] = None  # type: ignore[assignment]  # NULL: an empty field
    expected["e" * 32] = None  # type: ignore[assignment]  # "" is an empty field too
    path.write_bytes("".join(lines).encode("utf-8"))
    return expected


def test_text_round_trips_byte_for_byte_through_source_extract_load_and_staging(
    tmp_path, source_url, warehouse, csv_dir
):
    """Spaces, tabs, CR, LF, quotes, backslashes, emoji; any line-ending mix, empty lines: the
    same text in the source, the raw table and the staging model, on each source and warehouse."""
    name, database = warehouse
    env = Env(tmp_path / "data", source_url, name, database)
    expected = _review_file(csv_dir / "olist_order_reviews_dataset.csv")
    loaded_source(env, csv_dir)
    assert dict(env.source("SELECT review_id, review_comment_message FROM order_reviews")) == expected
    assert env.dwh("extract").exit_code == 0
    assert env.dwh("load").exit_code == 0
    assert dict(env.warehouse_rows("SELECT review_id, review_comment_message FROM raw.order_reviews")) == expected
    from loaders import pipeline

    from .helpers import quiet

    pipeline.build(
        env.settings,
        quiet(),
        ["--select", "stg_olist__order_reviews", "--resource-type", "model"],
        check_freshness=False,
    )
    staged = env.warehouse_rows("SELECT review_id, review_comment_message FROM staging.stg_olist__order_reviews")
    assert dict(staged) == expected


def test_mysql_zero_dates_in_the_csv_are_null_on_both_engines(env, csv_dir):
    set_field(csv_dir / "olist_orders_dataset.csv", 1, "order_approved_at", "0000-00-00 00:00:00")
    set_field(csv_dir / "olist_orders_dataset.csv", 2, "order_approved_at", "0000-00-00")
    loaded_source(env, csv_dir)
    assert env.source("SELECT count(*) FROM orders WHERE order_approved_at IS NULL") == [(2,)]


# -- kind 1 at extract: what the source holds but a later stage cannot --------------------------
def _extract_failure_line(table: str, column: str, key: str, value: str, reason: str) -> str:
    return (
        f"table {table!r}, column {column!r}, key ({key}): {value!r} {reason}; "
        "fix the row in the source: the next run extracts the table again"
    )


EXTRACT_BAD = [
    # (id, engines, table, column, key column, key, bad value (SQL literal), shown value, reason)
    (
        "sqlite-timestamp-free-text",
        ("sqlite",),
        "orders",
        "order_approved_at",
        "order_id",
        ORDER_2,
        "'yesterday'",
        "yesterday",
        "cannot be read as timestamp",
    ),
    (
        "sqlite-text-in-integer",
        ("sqlite",),
        "order_payments",
        "payment_installments",
        "order_id",
        ORDER_1,
        "'three'",
        "three",
        "cannot be read as integer",
    ),
    (
        "sqlite-decimal-out-of-range",
        ("sqlite",),
        "order_items",
        "price",
        "order_id",
        ORDER_1,
        "'123456789012.50'",
        "123456789012.50",
        "does not fit decimal128(10, 2)",
    ),
    (
        "sqlite-string-longer-than-declared",
        ("sqlite",),
        "orders",
        "order_status",
        "order_id",
        ORDER_1,
        "'delivered-to-the-neighbour'",
        "delivered-to-the-neighbour",
        "is longer than its declared varchar(16)",
    ),
    (
        "nul-in-text",
        ("sqlite", "mysql"),
        "order_reviews",
        "review_comment_message",
        "review_id",
        "78f6475b22de06cfce466b39e2596a9e",
        "?",
        "ok\x00then",
        "contains a NUL (PostgreSQL cannot store it)",
    ),
]


EXTRACT_CASES = [
    pytest.param(engine, *case[2:], id=f"{engine}-{case[0]}") for case in EXTRACT_BAD for engine in case[1]
]
PRIMARY_KEYS = {
    "order_reviews": lambda key: f"review_id={key!r}, order_id={ORDER_2!r}",
    "order_items": lambda key: f"order_id={key!r}, order_item_id=1",
    "order_payments": lambda key: f"order_id={key!r}, payment_sequential=1",
    "orders": lambda key: f"order_id={key!r}",
}


@pytest.mark.parametrize("engine, table, column, key_column, key, literal, shown, reason", EXTRACT_CASES)
def test_a_value_the_source_holds_but_a_later_stage_cannot_stops_only_its_table(
    request, tmp_path, csv_dir, engine, table, column, key_column, key, literal, shown, reason
):
    """Written by the shop's application after the source load: the extract stops the table
    with one line naming table, column, key and value; the other tables are extracted; once the
    row is fixed, the next run extracts it."""
    url = f"sqlite:///{tmp_path / 'source.sqlite'}" if engine == "sqlite" else request.getfixturevalue("mysql_url")
    env = Env(tmp_path / "data", url)
    loaded_source(env, csv_dir)
    original = env.source(f"SELECT {column} FROM {table} WHERE {key_column} = ?", (key,))[0][0]
    params = (shown, key) if literal == "?" else (key,)
    env.source(f"UPDATE {table} SET {column} = {literal} WHERE {key_column} = ?", params)
    result = env.dwh("extract")
    assert result.exit_code == 1
    (failed,) = [x.split("FAILED: ", 1)[1] for x in stdout_lines(result) if "FAILED: " in x]
    stem, tail = _extract_failure_line(table, column, PRIMARY_KEYS[table](key), shown, reason).split("; ", 1)
    assert re.fullmatch(re.escape(stem) + r"( \(.+\))?; " + re.escape(tail), failed), failed
    assert result.stderr.splitlines() == [f"error: 1 unit(s) failed: extract {table} failed: {failed}"]
    assert "Traceback" not in result.output and "panicked" not in result.output
    batches = {p.parent.parent.parent.name for p in env.store.glob("olist/*/*/batch=*/_manifest.json")}
    assert batches == {t for t in _declared() if t != table}  # every other table extracted
    assert not (env.store / layout.state_path(table)).exists()  # its watermark did not move
    env.source(f"UPDATE {table} SET {column} = ? WHERE {key_column} = ?", (original, key))
    again = env.dwh("extract")
    assert again.exit_code == 0, again.output
    assert env.dwh("load").exit_code == 0
    assert env.raw_count(table) > 0


def _declared() -> list[str]:
    from loaders.declarations import declared_tables

    return list(declared_tables(Settings().project_dir))


def test_zero_in_date_held_by_a_mysql_source_is_read_as_null_with_one_warning_line(tmp_path, mysql_url, csv_dir):
    """Shared case zero-in-date, for a MySQL source that already holds the value (written with
    a lax sql_mode): the documented rule maps it to NULL, one warning line names it, no panic
    output or traceback reaches the terminal, and every table is extracted."""
    env = Env(tmp_path / "data", mysql_url)
    loaded_source(env, csv_dir)
    env.source("UPDATE orders SET order_delivered_carrier_date = '2017-10-00 19:55:00' WHERE order_id = ?", (ORDER_1,))
    done = env.dwh_process("extract")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"WARNING loaders.extract: table orders, column order_delivered_carrier_date, key (order_id={ORDER_1!r}): "
        "'2017-10-00 19:55:00' is not a date: read as NULL (README: When data is bad)"
    ]
    assert len([x for x in done.stdout.splitlines() if "part(s)" in x]) == TABLES
    assert env.dwh("load").exit_code == 0
    assert env.warehouse_rows(f"SELECT order_delivered_carrier_date FROM raw.orders WHERE order_id = '{ORDER_1}'") == [
        (None,)
    ]
    assert env.dwh_process("extract").returncode == 0  # the next run too


# -- kind 6: state and source files checked, not trusted -----------------------------------------
@pytest.mark.parametrize(
    "state, message",
    [
        pytest.param(
            lambda s: {**s, "watermark": "2999-01-01T00:00:00"},
            "the watermark 2999-01-01T00:00:00 ({path}) is later than the source's clock",
            id="watermark-in-the-future",
        ),
        pytest.param(
            lambda s: {k: v for k, v in s.items() if k != "watermark"},
            "state file {path} has no 'watermark'; delete it to extract the table again from scratch",
            id="state-without-watermark",
        ),
        pytest.param(
            lambda s: {**s, "watermark": "yesterday"},
            "state file {path}: 'watermark' is 'yesterday', not a timestamp like 2026-11-30T08:00:00",
            id="watermark-not-a-timestamp",
        ),
        pytest.param(lambda s: "{not json", "{path} is not valid JSON", id="state-not-json"),
    ],
)
def test_a_bad_state_file_stops_only_its_table_with_one_line(env, csv_dir, state, message):
    loaded_source(env, csv_dir)
    assert env.dwh("extract").exit_code == 0
    path = env.store / layout.state_path("orders")
    good = path.read_text()
    bad = state(json.loads(good))
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    result = env.dwh("extract")
    assert result.exit_code == 1
    (failed,) = [x for x in stdout_lines(result) if "FAILED" in x]
    assert message.format(path=path) in failed
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: 1 unit(s) failed: extract orders")
    assert len([x for x in stdout_lines(result) if "watermark ->" in x or "part(s)" in x]) == TABLES - 1
    path.write_text(good)
    assert env.dwh("extract").exit_code == 0


def test_a_failed_extract_prints_one_line_per_failure_and_no_native_output(tmp_path, csv_dir):
    """As a terminal shows it (RUST_BACKTRACE set): the driver's error report and backtrace,
    and the Parquet writer's finalizer, stay off stderr; `--debug` shows the driver's output."""
    env = Env(tmp_path / "data", f"sqlite:///{tmp_path / 'source.sqlite'}")
    loaded_source(env, csv_dir)
    assert env.dwh("extract").exit_code == 0
    env.source("UPDATE orders SET order_approved_at = 'soon' WHERE order_id = ?", (ORDER_1,))
    done = env.dwh_process("extract")  # incremental: the streaming reader
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"error: 1 unit(s) failed: extract orders failed: table 'orders', column 'order_approved_at', "
        f"key (order_id={ORDER_1!r}): 'soon' cannot be read as timestamp ("
    )
    assert len([x for x in done.stdout.splitlines() if "part(s)" in x or "no changed rows" in x]) == TABLES - 1
    debug = env.dwh_process("--debug", "extract", "--table", "orders")
    assert "driver output:" in debug.stderr and "Traceback" in debug.stderr  # everything, with --debug


def test_an_extract_before_the_source_load_names_each_missing_table_in_one_line(env):
    if env.source_url.startswith("sqlite"):  # an empty file: as a database without the tables
        open_source(env.source_url, create=True).close()
    result = env.dwh("extract")
    assert result.exit_code == 1
    engine = "sqlite" if env.source_url.startswith("sqlite") else "mysql"
    failed = [x for x in stdout_lines(result) if "FAILED: table '" in x]
    assert len(failed) == TABLES
    # The schema-drift check (loaders/schema/) reads the source's catalog first and names the table.
    assert failed[0].endswith(f"FAILED: table 'customers' is not in the source database ({engine})")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(
        f"error: {TABLES} unit(s) failed: extract customers failed: table 'customers' is not in the source database"
    )


@pytest.mark.parametrize("command", [["extract"], ["verify"], ["schema", "diff"], ["status"]])
def test_a_read_only_command_before_the_sqlite_source_exists_says_so_and_creates_nothing(tmp_path, command):
    data = tmp_path / "data"
    path = tmp_path / "nowhere" / "olist.sqlite"
    done = Env(data, f"sqlite:///{path}").dwh_process(*command)
    assert not path.exists() and not path.parent.exists()
    if command == ["status"]:  # status reports on what exists; it never fails for a missing source
        assert "Traceback" not in done.stdout + done.stderr
        return
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"error: source database {path} does not exist: load it first with `dwh source load` "
        "(or run `dwh demo`), or set DWH_SOURCE_URL"
    ]
    assert not (data / "warehouse.duckdb").exists()


def test_a_corrupted_sqlite_source_is_named_in_one_line(tmp_path):
    path = tmp_path / "source.sqlite"
    path.write_bytes(b"this is not a database" * 200)
    done = Env(tmp_path / "data", f"sqlite:///{path}").dwh_process("extract")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: source database {path}: file is not a database (a corrupted or foreign file: restore it, "
        "or load the source again with dwh source load)"
    ]


# -- kind 3 and 6 at load: a batch the loader or the warehouse refuses is set aside ---------------
def _orders_batch(env: Env) -> tuple[Path, dict]:
    (manifest,) = env.store.glob("olist/orders/*/batch=*/_manifest.json")
    return manifest.parent, json.loads(manifest.read_text())


def _rewrite_part(folder: Path, manifest: dict, change) -> None:
    """Replace the batch's part with `change(table)` and make the manifest agree with it, so
    only the warehouse can refuse it."""
    import hashlib

    part = folder / manifest["parts"][0]["path"]
    pq.write_table(change(pq.read_table(part)), part)
    data = part.read_bytes()
    manifest["parts"][0].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (folder / "_manifest.json").write_text(json.dumps(manifest))


def _status_as_text(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("order_status")
    return table.set_column(i, "order_status", pa.array(["x" * 40] * table.num_rows))


LOAD_BAD = [
    pytest.param(
        lambda folder, m: (folder / m["parts"][0]["path"]).write_bytes(
            (b := (folder / m["parts"][0]["path"]).read_bytes())[: len(b) // 2]
            + bytes([b[len(b) // 2] ^ 0xFF])
            + b[len(b) // 2 + 1 :]
        ),
        "is corrupted (its SHA-256 differs from the manifest)",
        id="part-corrupted",
    ),
    pytest.param(
        lambda folder, m: (folder / m["parts"][0]["path"]).write_bytes(
            (folder / m["parts"][0]["path"]).read_bytes()[:100]
        ),
        "has 100 bytes, the manifest says",
        id="part-truncated",
    ),
    pytest.param(
        lambda folder, m: (folder / "_manifest.json").write_text(json.dumps({**m, "row_count": m["row_count"] + 5})),
        "the parts hold 2 rows, the manifest's row_count says 7",
        id="manifest-row-count-edited",
    ),
    pytest.param(
        lambda folder, m: (folder / "_manifest.json").write_text(
            json.dumps({**m, "parts": [{**m["parts"][0], "rows": 1}]})
        ),
        "part part-00000.parquet holds 2 rows, the manifest says 1",
        id="manifest-part-rows-edited",
    ),
    pytest.param(
        lambda folder, m: shutil.copy(folder / m["parts"][0]["path"], folder / "part-00001.parquet"),
        "the folder holds parts the manifest does not list (part-00001.parquet)",
        id="part-not-in-manifest",
    ),
]


@pytest.mark.parametrize("damage, reason", LOAD_BAD)
def test_a_batch_that_does_not_check_out_is_set_aside_and_retried(tmp_path, warehouse, csv_dir, damage, reason):
    name, database = warehouse
    env = Env(tmp_path / "data", f"sqlite:///{tmp_path / 'source.sqlite'}", name, database)
    _set_aside_and_retry(env, csv_dir, damage, reason)


def test_a_batch_the_warehouse_refuses_is_set_aside_and_retried(tmp_path, pg_database, csv_dir):
    """A part whose order_status is longer than PostgreSQL's VARCHAR(16): COPY refuses it."""
    env = Env(tmp_path / "data", f"sqlite:///{tmp_path / 'source.sqlite'}", "postgres", pg_database)
    _set_aside_and_retry(
        env, csv_dir, lambda folder, m: _rewrite_part(folder, m, _status_as_text), "could not be staged"
    )


def _set_aside_and_retry(env: Env, csv_dir: Path, damage, reason: str) -> None:
    loaded_source(env, csv_dir)
    assert env.dwh("extract").exit_code == 0
    folder, manifest = _orders_batch(env)
    saved = {p.name: p.read_bytes() for p in folder.iterdir()}
    damage(folder, manifest)
    result = env.dwh("load")
    assert result.exit_code == 1
    (line,) = [x for x in stdout_lines(result) if "set aside:" in x]
    assert line.split()[0] == "orders" and f"batch {manifest['batch_id']}" in line and reason in line
    assert result.stderr.startswith(f"error: 1 unit(s) failed: load orders set aside: batch {manifest['batch_id']}")
    assert len(result.stderr.splitlines()) == 1
    assert env.raw_count("orders") == 0  # nothing of it loaded ...
    assert env.raw_count("order_items") == 2 and env.raw_count("customers") == 2  # ... the other tables did
    listed = env.dwh("batches")
    assert listed.exit_code == 4
    assert stdout_lines(listed)[0].startswith(f"orders{' ' * 28} batch {manifest['batch_id']}: set aside ")
    assert reason in stdout_lines(listed)[0] and stdout_lines(listed)[-1] == "1 batch(es) set aside, not loaded"
    assert env.dwh("status").exit_code == 4
    for p in folder.iterdir():  # repaired (re-extracting would do as well)
        if p.name not in saved:
            p.unlink()
    for p_name, data in saved.items():
        (folder / p_name).write_bytes(data)
    retried = env.dwh("batches", "--retry")
    assert retried.exit_code == 0, retried.output
    assert stdout_lines(retried)[-1] == "no batch set aside"
    assert env.raw_count("orders") == 2
    assert env.dwh("load").exit_code == 0  # the next normal run proceeds


# -- kind 3: one failure costs only its unit in `dwh run` ---------------------------------------
def test_dwh_run_goes_on_past_a_failed_table_and_names_it(tmp_path, csv_dir):
    """An hourly run where one table's extract fails: the other tables' changes are extracted,
    loaded and built, the run exits 1 with a summary naming the table, and the run after the
    fix takes the table again."""
    env = Env(tmp_path / "data", f"sqlite:///{tmp_path / 'source.sqlite'}")
    loaded_source(env, csv_dir)
    first = env.dwh("run")
    assert first.exit_code == 0, first.output
    env.source("UPDATE orders SET order_approved_at = 'soon' WHERE order_id = ?", (ORDER_1,))
    env.source("UPDATE order_items SET price = '31.50' WHERE order_id = ?", (ORDER_1,))
    result = env.dwh("run")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    line = result.stderr.strip()
    stem = _extract_failure_line("orders", "order_approved_at", f"order_id={ORDER_1!r}", "soon", "x").split(" 'soon'")[
        0
    ]
    assert line.startswith(f"error: 1 unit(s) failed: extract orders failed: {stem} 'soon' cannot be read as ")
    assert "dbt build:" in result.stdout  # the build ran on what did load
    prices = env.warehouse_rows(f"SELECT price FROM staging.stg_olist__order_items WHERE order_id = '{ORDER_1}'")
    assert [float(p) for (p,) in prices] == [31.5]
    env.source("UPDATE orders SET order_approved_at = '2017-10-02 11:07:16' WHERE order_id = ?", (ORDER_1,))
    again = env.dwh("run")
    assert again.exit_code == 0, again.output
    approved = env.warehouse_rows(f"SELECT approved_at FROM staging.stg_olist__orders WHERE order_id = '{ORDER_1}'")
    assert [str(a) for (a,) in approved] == ["2017-10-02 11:07:16"]
