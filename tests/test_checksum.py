"""The row hash and the range checksum give the same value on every engine (issue 12): SQLite,
MariaDB, DuckDB and PostgreSQL computed here, Redshift rendered and parsed by SQLFluff."""

from __future__ import annotations

import random
import secrets
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg2
import pyarrow as pa
import pymysql
import pytest
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
PROJECT_DIR = Path(__file__).resolve().parent.parent
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
    assert checksum.duckdb_row_hashes(batch, COLUMNS).to_pylist() == _reference()
    assert checksum.arrow_row_hashes(batch.slice(1, 3), COLUMNS).to_pylist() == _reference()[1:4]
    assert checksum.arrow_row_hashes(batch.slice(0, 0), COLUMNS).to_pylist() == []


def _random_value(rng: random.Random, column: Column) -> object:
    """A value of the column's type, biased to the edges the canonical text must get right."""
    k, s = column.type.kind, column.type.scale or 0
    if rng.random() < 0.15:
        return None
    if column.type.is_string:
        return rng.choice(["", " ", "a", "ão", "日本語", "emoji 😀", "tab\tnew\nline", "n", ":", "x'y\\"]) + "".join(
            rng.choices("abcXYZ019 éß€", k=rng.randint(0, 12))
        )
    if k in ("integer", "bigint"):
        bound = 2**31 - 1 if k == "integer" else 2**63 - 1
        return rng.choice([0, 1, -1, bound, -bound - 1, rng.randint(-bound - 1, bound)])
    if k == "decimal":
        top = 10 ** (column.type.length or 10) - 1
        units = rng.choice([0, 1, -1, -50, 50, rng.randint(-top, top), top, -top])
        return Decimal(f"{units}E-{s}")  # exact (scaleb() would round to 28 digits)
    if k == "double":
        micro = rng.randint(-(10**12), 10**12)
        return rng.choice(
            [
                0.0,
                -0.0,
                (micro + 0.5) / 1e6,  # on (or a binary hair from) the rounding boundary
                -(micro + 0.5) / 1e6,
                micro / 1e6,
                rng.uniform(-1e-6, 1e-6),
                rng.uniform(-1e15, 1e15),
                rng.choice([1e31, -1e31, 2.5e-6, -2.5e-6, 5e-7, 0.1234565, 123456789.1234565]),
            ]
        )
    return datetime(1000, 1, 1) + timedelta(microseconds=rng.randint(0, 9000 * 365 * 86400 * 10**6))


RANDOM_COLUMNS = (
    *COLUMNS,
    Column("small", LogicalType.parse("decimal(4,3)")),
    Column("whole", LogicalType.parse("decimal(18,0)")),
    Column("wide", LogicalType.parse("decimal(38,10)")),
    Column("label", LogicalType.parse("char(32)")),
)


@pytest.mark.parametrize("seed", range(5))
def test_the_extract_hash_equals_duckdb_on_random_pages(seed):
    """`arrow_row_hashes` (pyarrow + hashlib, the extract) and `duckdb_row_hashes` (the DuckDB
    rendering the warehouses' backfill and `dwh verify` share) agree on every row of random
    pages of every declared type; the fixed rows agree with the Python reference too."""
    rng = random.Random(seed)
    schema = pa.schema([pa.field(c.name, c.type.arrow()) for c in RANDOM_COLUMNS])
    rows = [{c.name: _random_value(rng, c) for c in RANDOM_COLUMNS} for _ in range(2000)]
    rows += [{c.name: None for c in RANDOM_COLUMNS}, {c.name: "" if c.type.is_string else None for c in RANDOM_COLUMNS}]
    batch = pa.RecordBatch.from_pylist(rows, schema)
    ours = checksum.arrow_row_hashes(batch, RANDOM_COLUMNS)
    assert ours.type == pa.string() and ours.null_count == 0
    assert ours.to_pylist() == checksum.duckdb_row_hashes(batch, RANDOM_COLUMNS).to_pylist()
    assert len(set(ours.to_pylist()[-2:])) == 2  # all NULL differs from empty strings
    sliced = batch.slice(7, 500)  # a page that starts inside its buffers
    assert checksum.arrow_row_hashes(sliced, RANDOM_COLUMNS).to_pylist() == ours.to_pylist()[7:507]


def test_a_double_outside_decimal_38_6_names_its_column():
    ratio = Column("ratio", LogicalType.parse("double"))
    batch = pa.RecordBatch.from_pylist([{"ratio": 1.0}, {"ratio": 1e40}], pa.schema([pa.field("ratio", pa.float64())]))
    with pytest.raises(ValueError, match=r"column 'ratio': double 1e\+40 does not fit DECIMAL\(38,6\)"):
        checksum.arrow_row_hashes(batch, [ratio])
    with pytest.raises(duckdb.Error):  # DuckDB refused it as well
        checksum.duckdb_row_hashes(batch, [ratio])


def test_extracting_a_page_imports_neither_duckdb_nor_pandas():
    """Adding the change columns to a page in the extract process loads neither DuckDB nor
    pandas (issue 18: DuckDB's Arrow import, and pyarrow's conversion of any Python object,
    import pandas: together about 56 MB of RSS and seconds per run)."""
    code = (
        "import sys, pyarrow as pa\n"
        "from loaders.declarations import select_tables\n"
        "from loaders.extract.parts import with_change_columns\n"
        "from pathlib import Path\n"
        "t = select_tables(Path('.'), ['order_items'])[0]\n"
        "s = pa.schema([pa.field(c.name, c.type.arrow()) for c in t.columns])\n"
        "b = pa.RecordBatch.from_arrays([pa.nulls(3, f.type) for f in s], schema=s)\n"
        "from loaders.declarations import Column, LogicalType\n"
        "from loaders.verify.checksum import arrow_row_hashes\n"
        "d = pa.RecordBatch.from_arrays([pa.nulls(2, pa.float64())], names=['r'])\n"
        "arrow_row_hashes(d, [Column('r', LogicalType.parse('double'))])\n"
        "print(with_change_columns(b, t, 'r', 1).num_rows, 'duckdb' in sys.modules, 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_DIR)
    assert out.stdout.split() == ["3", "False", "False"]


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


@pytest.mark.parametrize("seed", range(3))
def test_postgres_equals_the_extract_hash_on_random_pages(seed):
    """PostgreSQL's `row_hash_sql` over rows staged the way the loader stages them (Arrow ->
    CSV -> COPY, arrow_copy.py) equals `arrow_row_hashes` (what batches extracted before issue 18
    carry) on every row of random pages of every declared type: a raw table mixes both (issue 18,
    the hash at the load). Before, doubles of more than 15 significant digits differed."""
    import io

    import pyarrow.csv as pacsv

    try:
        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        _unavailable(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    rng = random.Random(seed)
    schema = pa.schema([pa.field(c.name, c.type.arrow()) for c in RANDOM_COLUMNS])
    rows = [{c.name: _random_value(rng, c) for c in RANDOM_COLUMNS} for _ in range(2000)]
    batch = pa.RecordBatch.from_pylist(rows, schema)
    ours = checksum.arrow_row_hashes(batch, RANDOM_COLUMNS).to_pylist()
    # the random strings exceed their declared lengths: TEXT here (the rendering is the same)
    types = ["TEXT" if c.type.is_string else c.type.sql("postgres") for c in RANDOM_COLUMNS]
    buffer = io.BytesIO()
    numbered = batch.add_column(0, "i", pa.array(range(len(rows)), pa.int32()))
    pacsv.write_csv(numbered, buffer, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    buffer.seek(0)
    try:
        with conn.cursor() as cur:
            cols = ", ".join(f'"{c.name}" {t}' for c, t in zip(RANDOM_COLUMNS, types, strict=True))
            cur.execute(f"CREATE TEMPORARY TABLE t (i INTEGER, {cols})")
            cur.copy_expert("COPY t FROM STDIN WITH (FORMAT csv)", buffer)
            cur.execute(f"SELECT {checksum.row_hash_sql('postgres', RANDOM_COLUMNS)} FROM t ORDER BY i")
            theirs = [r[0] for r in cur.fetchall()]
    finally:
        conn.rollback()
        conn.close()
    assert theirs == ours


def _tricky_doubles(n: int, seed: int) -> list[float]:
    """Doubles on and near the 6th decimal's rounding boundary, geolocation-like values with 7 to
    13 decimals, huge and tiny magnitudes, both signs."""
    rng = random.Random(seed)
    out = [-132622.9221945, 123456789.1234565, -949427205145423.4, 0.0000005, -0.0000005, 2.5e-7, 1e20, -0.0]
    while len(out) < n:
        kind = rng.randrange(4)
        if kind == 0:  # lat/lng with many digits
            out.append(round(rng.uniform(-180, 180), rng.randint(7, 13)))
        elif kind == 1:  # x.yyyyyy5: the half-way text
            out.append(float(f"{rng.randint(-(10**9), 10**9)}.{rng.randint(0, 999999):06d}5"))
        elif kind == 2:
            out.append(rng.uniform(-1, 1) * 10 ** rng.randint(-8, 25))
        else:
            out.append(rng.randint(-(10**12), 10**12) / 10**6)
    return out


@pytest.mark.parametrize("engine", ["sqlite", "mysql", "duckdb", "postgres"])
def test_every_engine_renders_tricky_doubles_by_the_rule(engine, request):
    """`dwh verify` hashes the source's rows in the source (SQLite, MariaDB) and the warehouse's in
    the warehouse (DuckDB, PostgreSQL): a double must get one text everywhere, `double_text`'s.
    Before, MariaDB's cast gave -132622.922195 for -132622.9221945 (DuckDB: ...194), and SQLite's
    printf differed too: equal geolocation rows showed as differences."""
    values = _tricky_doubles(3000, seed=11)
    expected = [checksum.double_text(v) for v in values]
    column = Column("x", LogicalType.parse("double"))
    rows = list(enumerate(values))
    if engine == "sqlite":
        import sqlite3

        conn = sqlite3.connect(":memory:")
        checksum.register_sqlite(conn)
        conn.execute("CREATE TABLE t (i INTEGER, x REAL)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", rows)
        got = [
            r[0]
            for r in conn.execute(f"SELECT {checksum.value_text_sql('sqlite', 'x', column.type)} FROM t ORDER BY i")
        ]
    elif engine == "duckdb":
        import duckdb

        duck = duckdb.connect()
        duck.execute("CREATE TABLE t (i INTEGER, x DOUBLE)")
        duck.executemany("INSERT INTO t VALUES (?, ?)", rows)
        got = [
            r[0]
            for r in duck.execute(
                f"SELECT {checksum.value_text_sql('duckdb', 'x', column.type)} FROM t ORDER BY i"
            ).fetchall()
        ]
    elif engine == "mysql":
        from urllib.parse import urlsplit

        url = request.getfixturevalue("mysql_url")
        my = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=urlsplit(url).path[1:])
        try:
            with my.cursor() as cur:
                cur.execute("CREATE TABLE t (i INT, x DOUBLE)")
                cur.executemany("INSERT INTO t VALUES (%s, %s)", rows)
                cur.execute(f"SELECT {checksum.value_text_sql('mysql', 'x', column.type)} FROM t ORDER BY i")
                got = [r[0] for r in cur.fetchall()]
        finally:
            my.close()
    else:
        try:
            pg = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
        except psycopg2.OperationalError as exc:
            _unavailable(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
        try:
            with pg.cursor() as cur:
                cur.execute("CREATE TEMPORARY TABLE t (i INTEGER, x DOUBLE PRECISION)")
                cur.executemany("INSERT INTO t VALUES (%s, %s)", rows)
                cur.execute(f"SELECT {checksum.value_text_sql('postgres', 'x', column.type)} FROM t ORDER BY i")
                got = [r[0] for r in cur.fetchall()]
        finally:
            pg.close()
    differing = [(v, e, g) for v, e, g in zip(values, expected, got, strict=True) if e != g]
    assert not differing, f"{len(differing)} of {len(values)} differ, e.g. {differing[:3]}"
