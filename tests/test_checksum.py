"""The row hash and the range checksum give the same value on every engine (issue 12): SQLite,
MariaDB, DuckDB and PostgreSQL computed here, Redshift rendered and parsed by SQLFluff."""

from __future__ import annotations

import secrets
import sqlite3
from datetime import datetime
from decimal import Decimal

import duckdb
import psycopg2
import pyarrow as pa
import pymysql
import sqlfluff

from loaders.declarations import Column, LogicalType
from loaders.verify import checksum

from .conftest import _unavailable

COLUMNS = (
    Column("id", LogicalType.parse("integer")),
    Column("code", LogicalType.parse("char(5)")),
    Column("name", LogicalType.parse("varchar(40)")),
    Column("note", LogicalType.parse("text")),
    Column("price", LogicalType.parse("decimal(10,2)")),
    Column("big", LogicalType.parse("bigint")),
    Column("at", LogicalType.parse("timestamp(6)")),
    Column("day", LogicalType.parse("timestamp")),
    Column("ratio", LogicalType.parse("double")),
)
ROWS = [
    (
        1,
        "01310",
        "São Paulo",
        "ok",
        Decimal("99.90"),
        10**12,
        datetime(2018, 7, 1, 10, 0, 0, 123456),
        datetime(2018, 7, 1),
        -23.5456789,
    ),
    (2, None, "", None, Decimal("-0.50"), -7, datetime(2017, 1, 2, 3, 4, 5), None, 0.1),
    (3, "00000", None, "", Decimal("0.00"), 0, datetime(2020, 2, 29, 23, 59, 59, 999999), None, None),
    (
        4,
        "x'y",
        "quote ' and \\ back",
        "multi\nline",
        Decimal("12345678.99"),
        1,
        datetime(2000, 1, 1, 0, 0, 0, 1),
        datetime(1999, 12, 31, 23, 0, 0),
        46.0,
    ),
    (5, "AbCdE", "Trailing Space  ", "MiXeD", Decimal("1.00"), 5, datetime(2021, 5, 6, 7, 8, 9), None, 1.5),
]
KEY = (COLUMNS[0], COLUMNS[2])  # a composite key: integer and text (mixed case, trailing spaces)


def _reference() -> list[str]:
    return [checksum.row_hash(r, COLUMNS) for r in ROWS]


def _buckets() -> list[str]:
    return [checksum.key_bucket((r[0], r[2]), KEY, 4) for r in ROWS]


def _sums(hashes: list[str]) -> int:
    return sum(int(h[:8], 16) for h in hashes)


def _create(engine: str) -> str:
    q = "`" if engine == "mysql" else '"'
    cols = ", ".join(f"{q}{c.name}{q} {c.type.sql(engine)}" for c in COLUMNS)  # type: ignore[arg-type]  # engine names
    return f"CREATE TABLE t ({cols})"


def _query(engine: str) -> tuple[str, str]:
    h = checksum.row_hash_sql(engine, COLUMNS)  # type: ignore[arg-type]  # engine names
    bucket = checksum.key_bucket_sql(engine, KEY, 4)  # type: ignore[arg-type]  # engine names
    rows = f"SELECT {h}, {bucket} FROM t ORDER BY id"
    total = f"SELECT count(*), {checksum.bucket_sum_sql(engine, checksum.row_hash_sql(engine, COLUMNS))} FROM t"  # type: ignore[arg-type]  # engine names
    return rows, total


def test_key_buckets_differ_by_case_and_trailing_spaces():
    keys = [(1, "abc"), (1, "ABC"), (1, "abc "), (2, "abc"), (1, None)]
    assert len({checksum.row_hash(k, KEY) for k in keys}) == len(keys)
    assert [checksum.key_bucket(k, KEY, 3) for k in keys] == [checksum.row_hash(k, KEY)[:3] for k in keys]


def test_null_empty_and_cent_change_the_hash():
    base = ROWS[0]
    hashes = {
        checksum.row_hash(base, COLUMNS),
        checksum.row_hash((*base[:3], None, *base[4:]), COLUMNS),  # NULL note
        checksum.row_hash((*base[:3], "", *base[4:]), COLUMNS),  # '' note
        checksum.row_hash((*base[:4], Decimal("99.91"), *base[5:]), COLUMNS),  # a cent
        checksum.row_hash((*base[:6], datetime(2018, 7, 1, 10, 0, 0, 123457), *base[7:]), COLUMNS),  # a microsecond
    }
    assert len(hashes) == 5
    assert all(len(h) == 32 and h == h.lower() for h in hashes)


def test_sqlite_matches_the_reference():
    conn = sqlite3.connect(":memory:")
    checksum.register_sqlite(conn)
    conn.execute(_create("sqlite"))
    # SQLite keeps decimals as text and timestamps as ISO text, as the source bootstrap does
    for r in ROWS:
        values = [str(v) if isinstance(v, (Decimal, datetime)) else v for v in r]
        conn.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
    rows, total = _query("sqlite")
    assert [r[0] for r in conn.execute(rows)] == _reference()
    assert [r[1] for r in conn.execute(rows)] == _buckets()
    assert conn.execute(total).fetchone() == (len(ROWS), _sums(_reference()))


def test_duckdb_and_the_extract_match_the_reference():
    con = duckdb.connect()
    con.execute(_create("duckdb"))
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [list(r) for r in ROWS])
    rows, total = _query("duckdb")
    assert [r[0] for r in con.execute(rows).fetchall()] == _reference()
    assert [r[1] for r in con.execute(rows).fetchall()] == _buckets()
    assert con.execute(total).fetchone() == (len(ROWS), _sums(_reference()))
    schema = pa.schema([pa.field(c.name, c.type.arrow()) for c in COLUMNS])
    batch = pa.RecordBatch.from_pylist([dict(zip([c.name for c in COLUMNS], r, strict=True)) for r in ROWS], schema)
    assert checksum.arrow_row_hashes(batch, COLUMNS).to_pylist() == _reference()


def test_mariadb_matches_the_reference(mysql_url):
    from urllib.parse import urlsplit

    conn = pymysql.connect(
        host="127.0.0.1", port=3306, user="root", password="", database=urlsplit(mysql_url).path[1:], charset="utf8mb4"
    )
    try:  # closed before the fixture drops the database (an open connection would block it)
        with conn.cursor() as cur:
            cur.execute(_create("mysql"))
            cur.executemany("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", ROWS)
            rows, total = _query("mysql")
            cur.execute(rows)
            hashes, buckets = zip(*cur.fetchall(), strict=True)
            cur.execute(total)
            count, sums = cur.fetchone()
    finally:
        conn.close()
    assert list(hashes) == _reference()
    assert list(buckets) == _buckets()
    assert (count, int(sums)) == (len(ROWS), _sums(_reference()))


def test_postgres_matches_the_reference():
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        _unavailable(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    schema = f"checksum_{secrets.token_hex(4)}"
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {schema}; SET search_path TO {schema}")
            cur.execute(_create("postgres"))
            cur.executemany("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", ROWS)
            rows, total = _query("postgres")
            cur.execute(rows)
            assert [r[:2] for r in cur.fetchall()] == list(zip(_reference(), _buckets(), strict=True))
            cur.execute(total)
            count, sums = cur.fetchone()
            assert (count, int(sums)) == (len(ROWS), _sums(_reference()))
    finally:
        conn.rollback()
        conn.close()


def test_redshift_sql_parses():
    rows, total = _query("redshift")
    for sql in (_create("redshift"), rows, total):
        sqlfluff.parse(sql, dialect="redshift")
    assert "STRTOL(" in total and "to_char(" in rows
