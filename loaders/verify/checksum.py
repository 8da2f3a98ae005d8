"""The row hash and the bucket checksum, defined once and rendered for every engine.

A row's canonical text is its declared columns in declaration order, each encoded as
`n` when NULL and `:` followed by its canonical text otherwise, joined by the character
U+001F (unit separator). Canonical texts per logical type:

- strings (char, varchar, text): the value itself;
- integer, bigint: decimal digits, `-` for negatives;
- decimal(p,s): the exact value with exactly `s` digits after the point (`99.90`, `-0.50`);
- timestamp: `YYYY-MM-DD HH:MM:SS.ffffff` (always six fraction digits; MySQL zero dates are NULL);
- double: rounded to 6 digits after the point, written like a decimal(38,6) (at 10 digits, SQLite
  and DuckDB rounded 1 value in 10,000 differently: the binary value sits on the boundary).

`_row_hash` is the lowercase hex MD5 of the UTF-8 bytes of that text (32 characters). It is
computed at extract over each Arrow page (DuckDB, `arrow_row_hashes`), and the same expression
is rendered for SQLite, MySQL/MariaDB, DuckDB, PostgreSQL and Redshift (`row_hash_sql`) so
that `dwh verify` can compute it on both sides. A key's bucket (`key_bucket_sql`) is the
first digits of the MD5 of the key columns' canonical text: `dwh verify` groups both sides by
it. A bucket checksum is the row count and the sum
of the first 8 hex digits of each row hash read as an unsigned integer (`bucket_sum_sql`):
order-independent, exact in a BIGINT/DECIMAL sum for up to 2^31 rows per bucket. Text that
contains U+001F could collide with another row's text; declared data does not hold that
character. SQLite has no MD5: the source registers `md5()` as a Python function.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa

from ..declarations import Column, LogicalType

Dialect = Literal["sqlite", "mysql", "duckdb", "postgres", "redshift"]
DIALECTS: tuple[Dialect, ...] = ("sqlite", "mysql", "duckdb", "postgres", "redshift")
SEPARATOR = "\x1f"
NULL_MARK = "n"
VALUE_MARK = ":"
DOUBLE_SCALE = 6  # 10 digits: 1 value in 10,000 rounded differently by SQLite printf and DuckDB
HASH_PREFIX_DIGITS = 8


def _quote(dialect: Dialect, name: str) -> str:
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def _sep(dialect: Dialect) -> str:
    return {"mysql": "CHAR(31 USING utf8mb4)", "sqlite": "char(31)"}.get(dialect, "chr(31)")


def value_text_sql(dialect: Dialect, column: str, kind: LogicalType, qualifier: str = "") -> str:
    """The canonical text of one column's value (NULL stays NULL), as SQL of `dialect`.

    `column` is the column name (quoted here); `qualifier` an optional table alias."""
    q = (qualifier + "." if qualifier else "") + _quote(dialect, column)
    k, s = kind.kind, kind.scale or 0
    if dialect == "mysql":
        if k == "timestamp":
            return f"DATE_FORMAT(NULLIF({q}, '0000-00-00 00:00:00'), '%Y-%m-%d %H:%i:%s.%f')"
        if k == "double":
            return f"CAST(CAST({q} AS DECIMAL(38,{DOUBLE_SCALE})) AS CHAR)"
        if k == "decimal":
            return f"CAST(CAST({q} AS DECIMAL({kind.length},{s})) AS CHAR)"
        return f"CAST({q} AS CHAR)"
    if dialect == "sqlite":
        if k == "timestamp":
            # stored as text: 'YYYY-MM-DD HH:MM:SS', with or without a fraction (or a 'T')
            fraction = f"CASE WHEN instr({q}, '.') > 0 THEN substr({q}, instr({q}, '.') + 1) ELSE '' END"
            return (
                f"CASE WHEN {q} IS NULL THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%S', {q}) || '.' || "
                f"substr({fraction} || '000000', 1, 6) END"
            )
        # printf() turns NULL into 0: guard it
        if k == "decimal":
            return f"CASE WHEN {q} IS NULL THEN NULL ELSE printf('%.{s}f', {q}) END"
        if k == "double":
            return f"CASE WHEN {q} IS NULL THEN NULL ELSE printf('%.{DOUBLE_SCALE}f', {q}) END"
        if k in ("integer", "bigint"):
            return f"CAST(CAST({q} AS INTEGER) AS TEXT)"
        return f"CAST({q} AS TEXT)"
    if dialect == "duckdb":
        if k == "timestamp":
            return f"strftime(CAST({q} AS TIMESTAMP), '%Y-%m-%d %H:%M:%S.%f')"
        if k == "double":
            return f"CAST(CAST({q} AS DECIMAL(38,{DOUBLE_SCALE})) AS VARCHAR)"
        if k == "decimal":
            return f"CAST(CAST({q} AS DECIMAL({kind.length},{s})) AS VARCHAR)"
        return f"CAST({q} AS VARCHAR)"
    # postgres, redshift
    if k == "timestamp":
        return f"to_char({q}, 'YYYY-MM-DD HH24:MI:SS.US')"
    if k == "double":
        return f"CAST(CAST({q} AS DECIMAL(38,{DOUBLE_SCALE})) AS VARCHAR)"
    if k == "decimal":
        return f"CAST(CAST({q} AS DECIMAL({kind.length},{s})) AS VARCHAR)"
    return f"CAST({q} AS VARCHAR)"


def row_text_sql(dialect: Dialect, columns: Sequence[Column], qualifier: str = "") -> str:
    """The canonical text of a row of the declared `columns`, as SQL of `dialect`."""
    fields = [
        f"COALESCE('{VALUE_MARK}' || {value_text_sql(dialect, c.name, c.type, qualifier)}, '{NULL_MARK}')"
        if dialect != "mysql"
        else f"COALESCE(CONCAT('{VALUE_MARK}', {value_text_sql(dialect, c.name, c.type, qualifier)}), '{NULL_MARK}')"
        for c in columns
    ]
    if dialect == "mysql":
        return f"CONCAT_WS({_sep(dialect)}, {', '.join(fields)})"
    return f" || {_sep(dialect)} || ".join(fields)


def row_hash_sql(dialect: Dialect, columns: Sequence[Column], qualifier: str = "") -> str:
    """`_row_hash` of a row as SQL of `dialect`: lowercase hex MD5 of the canonical text."""
    text = row_text_sql(dialect, columns, qualifier)
    if dialect == "mysql":
        return f"MD5(CONVERT({text} USING utf8mb4))"
    return f"md5({text})"


def key_bucket_sql(dialect: Dialect, key_columns: Sequence[Column], digits: int, qualifier: str = "") -> str:
    """The bucket of a key, as SQL of `dialect`: the first `digits` lowercase hex digits of the
    MD5 of the key columns' canonical text (the row text of the key columns alone). The same
    key gives the same bucket on every engine, whatever its collation or storage order."""
    text = row_text_sql(dialect, key_columns, qualifier)
    if dialect == "mysql":
        return f"SUBSTRING(MD5(CONVERT({text} USING utf8mb4)), 1, {digits})"
    return f"substr(md5({text}), 1, {digits})"


def hash_int_sql(dialect: Dialect, hash_sql: str) -> str:
    """The first 8 hex digits of a row hash as a non-negative integer, as SQL of `dialect`."""
    prefix = f"substr({hash_sql}, 1, {HASH_PREFIX_DIGITS})"
    if dialect == "mysql":
        return f"CAST(CONV(SUBSTRING({hash_sql}, 1, {HASH_PREFIX_DIGITS}), 16, 10) AS UNSIGNED)"
    if dialect == "sqlite":
        return f"hex_int({prefix})"  # registered with md5() by the SQLite source
    if dialect == "duckdb":
        return f"CAST(CAST('0x' || {prefix} AS UBIGINT) AS BIGINT)"
    if dialect == "redshift":
        return f"STRTOL({prefix}, 16)"
    return f"CAST(CAST('x' || lpad({prefix}, 16, '0') AS BIT(64)) AS BIGINT)"


def bucket_sum_sql(dialect: Dialect, hash_sql: str) -> str:
    """The order-independent checksum of the rows of a bucket: SUM of `hash_int_sql`."""
    return f"SUM({hash_int_sql(dialect, hash_sql)})"


# -- Python side: the same text, for tests and for registering md5 in SQLite ------------------
def value_text(value: object, kind: LogicalType) -> str | None:
    """The canonical text of one Python value of a declared type (None for NULL)."""
    if value is None:
        return None
    k = kind.kind
    if k == "timestamp":
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if k == "decimal":
        return f"{Decimal(str(value)).quantize(Decimal(1).scaleb(-(kind.scale or 0))):f}"
    if k == "double":
        return f"{Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-DOUBLE_SCALE)):f}"  # type: ignore[arg-type]  # value is a number here
    if k in ("integer", "bigint"):
        return str(int(value))  # type: ignore[call-overload]  # value is a number here
    return str(value)


def row_text(values: Sequence[object], columns: Sequence[Column]) -> str:
    """The canonical text of one row given as Python values in declaration order."""
    out = []
    for value, column in zip(values, columns, strict=True):
        text = value_text(value, column.type)
        out.append(NULL_MARK if text is None else VALUE_MARK + text)
    return SEPARATOR.join(out)


def row_hash(values: Sequence[object], columns: Sequence[Column]) -> str:
    """`_row_hash` of one row given as Python values (the reference the SQL must match)."""
    return hashlib.md5(row_text(values, columns).encode("utf-8")).hexdigest()


def key_bucket(values: Sequence[object], key_columns: Sequence[Column], digits: int) -> str:
    """The bucket of a key given as Python values (the reference `key_bucket_sql` must match)."""
    return row_hash(values, key_columns)[:digits]


def md5_hex(text: str | None) -> str | None:
    """MD5 as lowercase hex (the `md5()` SQLite lacks)."""
    return None if text is None else hashlib.md5(text.encode("utf-8")).hexdigest()


def hex_int(text: str | None) -> int | None:
    """A hex string as an integer (`hex_int()` for SQLite)."""
    return None if text is None else int(text, 16)


def register_sqlite(conn: object) -> None:
    """Give a sqlite3 connection the `md5()` and `hex_int()` functions the SQL above uses."""
    conn.create_function("md5", 1, md5_hex, deterministic=True)  # type: ignore[attr-defined]  # sqlite3.Connection
    conn.create_function("hex_int", 1, hex_int, deterministic=True)  # type: ignore[attr-defined]  # sqlite3.Connection


# -- extract: hashing an Arrow page -----------------------------------------------------------
def arrow_row_hashes(batch: pa.RecordBatch, columns: Sequence[Column]) -> pa.Array:
    """`_row_hash` of every row of a conformed record batch (DuckDB over the Arrow data, the
    DuckDB rendering of the same expression). Returns a string array of the batch's length."""
    con = _duck()
    try:
        con.register("page", pa.Table.from_batches([batch]))
        result = con.sql(f"SELECT {row_hash_sql('duckdb', columns)} AS h FROM page").to_arrow_table()
    finally:
        con.close()  # a cursor of its own: closing it drops the registration
    return result.column("h").combine_chunks().cast(pa.string())


_DUCK: list = []


def _duck() -> Any:
    """A cursor on one in-memory DuckDB database, kept for the process."""
    import duckdb

    if not _DUCK:
        _DUCK.append(duckdb.connect(":memory:"))
    return _DUCK[0].cursor()
