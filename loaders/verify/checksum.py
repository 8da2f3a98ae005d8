"""The row hash and the bucket checksum, defined once and rendered for every engine.

A row's canonical text is its declared columns in declaration order, each encoded as
`n` when NULL and `:` followed by its canonical text otherwise, joined by the character
U+001F (unit separator). Canonical texts per logical type:

- strings (char, varchar, text): the value itself;
- integer, bigint: decimal digits, `-` for negatives;
- decimal(p,s): the exact value with exactly `s` digits after the point (`99.90`, `-0.50`);
- timestamp: `YYYY-MM-DD HH:MM:SS.ffffff` (always six fraction digits; MySQL zero dates are NULL);
- double: `x * 10^6` in double precision rounded to the nearest integer (ties away from zero),
  written like a decimal(38,6): DuckDB's cast, rendered exactly for PostgreSQL, Redshift and
  MySQL/MariaDB (PostgreSQL's own cast keeps only 15 significant digits, MariaDB's rounds the
  shortest decimal text half up) and by a registered Python function on SQLite (whose printf
  rounded 1 value in 10,000 differently at 10 digits): `double_text` is the rule.

`_row_hash` is the lowercase hex MD5 of the UTF-8 bytes of that text (32 characters). Since
issue 18 the warehouse computes it when it stages a batch (`row_hash_sql` of its dialect,
loaders/load/statements.py), not the extract: the extract's CPU per row was the bottleneck
(BENCHMARKS.md, issue 18: row hash at the load). Batches extracted before carry it in their
parts, computed over each Arrow page with pyarrow.compute and hashlib (`arrow_row_hashes`,
kept as the reference), and a raw table mixes both: the renderings must agree byte for byte,
which tests/test_checksum.py checks on every engine that runs here (random pages of every
declared type) and tests/test_hash_at_load.py checks through real loads. The same expression
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
import math
from array import array
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

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
            return _exact_double_text_sql(q, "mysql")
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
        if k == "double":  # printf's %f rounds the binary value itself: 1 in 10,000 differed
            return f"double_text({q})"
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
        return _exact_double_text_sql(q)
    if k == "decimal":
        return f"CAST(CAST({q} AS DECIMAL({kind.length},{s})) AS VARCHAR)"
    return f"CAST({q} AS VARCHAR)"


def _exact_double_text_sql(q: str, dialect: Dialect = "postgres") -> str:
    """PostgreSQL/Redshift/MySQL: a double's canonical text computed exactly as DuckDB (and the
    extract's `arrow_value_text`) does: `x * 10^6` in double precision, rounded to the nearest
    integer with ties away from zero, written with 6 digits after the point.

    MariaDB's own `CAST(x AS DECIMAL(38,6))` rounds the double's shortest decimal text half up:
    -132622.9221945 (binary value -132622.92219449999...) gave ...922195 against DuckDB's
    ...922194, so `dwh verify` saw geolocation rows differ that were equal.

    PostgreSQL's own `CAST(x AS DECIMAL(38,6))` first prints the double with 15 significant
    digits (float8_numeric), so any double with more digits (-949427205145423.4, or
    123456789.1234565 on its rounding boundary) got another text, hence another hash, than the
    extract gave it (BENCHMARKS.md, issue 18: row hash at the load). Here every step is exact:
    `y - trunc(y)` is exact in binary, so is the rounding; the integer-valued double is split
    into three 48-bit pieces (exact: each is a run of its mantissa's bits) that fit a BIGINT,
    and summed as NUMERIC. |x| must be under 1e32 (DuckDB refuses more; the extract checks it,
    `check_doubles`)."""
    if dialect == "mysql":  # no trunc(); DOUBLE literals are written with an exponent
        dbl = lambda n: f"{n}e0"
        trunc = lambda x: f"TRUNCATE({x}, 0)"
        big, text = "SIGNED", "CHAR"
    else:
        dbl = lambda n: f"CAST({n} AS DOUBLE PRECISION)"
        trunc = lambda x: f"trunc({x})"
        big, text = "BIGINT", "VARCHAR"
    y = f"({q} * {dbl(1000000)})"
    r = f"(CASE WHEN abs({y} - {trunc(y)}) >= 0.5 THEN {trunc(y)} + sign({y}) ELSE {trunc(y)} END)"
    hi = trunc(f"{r} / {dbl(79228162514264337593543950336)}")  # 2^96
    rest = f"({r} - {hi} * {dbl(79228162514264337593543950336)})"
    mid = trunc(f"{rest} / {dbl(281474976710656)}")  # 2^48
    low = f"({rest} - {mid} * {dbl(281474976710656)})"
    units = (
        f"(CAST(CAST({hi} AS {big}) AS DECIMAL(38,0)) * CAST(79228162514264337593543950336 AS DECIMAL(38,0)) "
        f"+ CAST(CAST({mid} AS {big}) AS DECIMAL(38,0)) * CAST(281474976710656 AS DECIMAL(38,0)) "
        f"+ CAST(CAST({low} AS {big}) AS DECIMAL(38,0)))"
    )
    return f"CAST(CAST({units} * CAST(0.000001 AS DECIMAL(7,{DOUBLE_SCALE})) AS DECIMAL(38,{DOUBLE_SCALE})) AS {text})"


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
        return double_text(float(value))  # type: ignore[arg-type]  # value is a number here
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


def double_text(value: float | None) -> str | None:
    """A double's canonical text (None for None): `value * 10^6` in double precision, rounded to
    the nearest integer with ties away from zero, with 6 digits after the point (DuckDB's
    `CAST(x AS DECIMAL(38,6))`, the rule every engine's rendering follows). SQLite uses it as
    the SQL function `double_text()`."""
    if value is None:
        return None
    y = value * 1e6
    whole = math.trunc(y)
    if abs(y - whole) >= 0.5:
        whole += 1 if y > 0 else -1
    units, fraction = divmod(abs(whole), 10**DOUBLE_SCALE)  # integers: exact at any magnitude
    return f"{'-' if whole < 0 else ''}{units}.{fraction:0{DOUBLE_SCALE}d}"


def register_sqlite(conn: object) -> None:
    """Give a sqlite3 connection the `md5()`, `hex_int()` and `double_text()` functions the SQL
    above uses."""
    conn.create_function("double_text", 1, double_text, deterministic=True)  # type: ignore[attr-defined]  # sqlite3.Connection
    conn.create_function("md5", 1, md5_hex, deterministic=True)  # type: ignore[attr-defined]  # sqlite3.Connection
    conn.create_function("hex_int", 1, hex_int, deterministic=True)  # type: ignore[attr-defined]  # sqlite3.Connection


# -- Arrow pages: the extract's checks, and the hash its batches carried before issue 18 -----------
# pyarrow imports pandas (about 40 MB and a second) the first time it converts a Python object
# (pa.array of a list, pa.scalar, a str or float argument to a compute function). The extract
# process converts none: the arrays and scalars below are built from buffers.
def string_array(values: Sequence[str]) -> pa.Array:
    """A pa.string() array of `values` (no NULLs), built from buffers (no pandas import)."""
    data = [v.encode("utf-8") for v in values]
    offsets = array("i", [0])
    for d in data:
        offsets.append(offsets[-1] + len(d))
    return pa.StringArray.from_buffers(len(data), pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(data)))


def repeated_string(text: str, n: int) -> pa.Array:
    """A pa.string() array of `n` times `text`, built from buffers (no pandas import)."""
    data = text.encode("utf-8")
    offsets = array("i", range(0, len(data) * (n + 1), len(data))) if data else array("i", [0] * (n + 1))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data * n))


def int64_range(start: int, n: int) -> pa.Array:
    """A pa.int64() array `start`, `start + 1`, ... (`n` values), built from buffers."""
    return pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(array("q", range(start, start + n)).tobytes())])


def _double(x: float) -> pa.Scalar:
    return pa.Array.from_buffers(pa.float64(), 1, [None, pa.py_buffer(array("d", [x]).tobytes())])[0]


_VALUE_MARK, _NULL_MARK, _SEPARATOR, _EMPTY = string_array([VALUE_MARK, NULL_MARK, SEPARATOR, ""])
DOUBLE_LIMIT = 1e32
"""Doubles at or beyond this magnitude do not fit DECIMAL(38,6), the rendering of a double."""
_DOUBLE_LIMIT, _DOUBLE_UNITS = _double(DOUBLE_LIMIT), _double(float(10**DOUBLE_SCALE))


def check_double(values: pa.Array, column: Column) -> None:
    """Raise ValueError naming the column when a value of a float64 array is NaN, infinite or at
    least 1e32 in magnitude: its canonical text (DECIMAL(38,6)) does not exist, and DuckDB
    refuses the cast. NULLs pass."""
    finite = pc.is_finite(values)
    if pc.any(pc.or_kleene(pc.invert(finite), pc.greater_equal(pc.abs(values), _DOUBLE_LIMIT))).as_py():
        bad = next(v for v in values.to_pylist() if v is not None and not abs(v) < DOUBLE_LIMIT)
        raise ValueError(f"column {column.name!r}: double {bad!r} does not fit DECIMAL(38,{DOUBLE_SCALE})")


def check_doubles(batch: pa.RecordBatch, columns: Sequence[Column]) -> None:
    """`check_double` on every double column of a conformed batch: what the extract checks so
    that the warehouse can compute `_row_hash` of every row it stages (since issue 18)."""
    for column in columns:
        if column.type.kind == "double":
            check_double(batch.column(column.name).cast(pa.float64()), column)


def arrow_value_text(values: pa.Array, column: Column) -> pa.Array:
    """The canonical text of every value of one conformed column (a string array; NULL stays
    NULL), computed with pyarrow.compute: byte for byte what `value_text_sql("duckdb", ...)`
    renders (tests/test_checksum.py compares them over random pages).

    - strings as they are; integers as decimal digits (Arrow's cast);
    - decimal(p,s): Arrow's cast of the decimal128(p,s) array, which writes exactly s digits
      (Python's Decimal when Arrow would write E notation: scales over 6, values under 10^-6);
    - timestamp(us): Arrow's cast, `YYYY-MM-DD HH:MM:SS.ffffff` (always six digits);
    - double: times 10^6, rounded half away from zero (DuckDB's double -> DECIMAL(38,6) cast),
      the integer then written as a decimal with 6 digits after the point.

    Raises ValueError naming the column when a double is NaN, infinite or at least 1e32 in
    magnitude (DuckDB refuses those casts as well)."""
    kind = column.type.kind
    if kind == "double":
        values = values.cast(pa.float64())
        check_double(values, column)
        scaled = pc.round(pc.multiply(values, _DOUBLE_UNITS), ndigits=0, round_mode="half_towards_infinity")
        units = scaled.cast(pa.decimal128(38, 0))  # an integer-valued double: exact
        micro = pa.Array.from_buffers(pa.decimal128(38, DOUBLE_SCALE), len(units), units.buffers(), offset=units.offset)
        return micro.cast(pa.string())
    if values.type == pa.string():
        return values
    text = values.cast(pa.string())
    if kind == "decimal" and (column.type.scale or 0) > 6 and pc.any(pc.match_substring(text, "E")).as_py():
        # Arrow writes a value under 10^-6 of a scale over 6 in E notation (1E-10): Python's Decimal
        # gives the plain digits (a per-value loop, only for such columns when a page has one)
        return pa.array([None if v is None else f"{v:f}" for v in values.to_pylist()], pa.string())
    return text


def arrow_row_texts(batch: pa.RecordBatch, columns: Sequence[Column]) -> pa.Array:
    """The canonical row text of every row of a conformed batch (a string array without NULLs),
    in the declared order of `columns` (module docstring)."""
    texts = [arrow_value_text(batch.column(c.name), c) for c in columns]
    fields = [pc.fill_null(pc.binary_join_element_wise(_VALUE_MARK, t, _EMPTY), _NULL_MARK) for t in texts]
    return pc.binary_join_element_wise(*fields, _SEPARATOR)


def arrow_row_hashes(batch: pa.RecordBatch, columns: Sequence[Column]) -> pa.Array:
    """`_row_hash` of every row of a conformed record batch: a string array of the batch's
    length, each the 32 lowercase hex digits of the MD5 of the row's canonical text. What the
    extract computed until issue 18 moved the hash to the load (`duckdb_row_hashes` before it,
    equal): what those batches carry, and the reference the warehouses' rendering is tested
    against.

    Pure pyarrow and hashlib: no DuckDB in the extract process (its Arrow import loads pandas,
    +56 MB RSS, and it took 1.5 x this CPU per row; BENCHMARKS.md, issue 18). Equal to
    `duckdb_row_hashes` on every page (tests/test_checksum.py). Raises ValueError as
    `arrow_value_text` does."""
    texts = arrow_row_texts(batch, columns)
    n = len(texts)
    if n == 0:
        return string_array([])
    offsets = memoryview(texts.buffers()[1]).cast("i")[texts.offset : texts.offset + n + 1].tolist()
    data = memoryview(texts.buffers()[2] or b"")
    md5 = _page_md5
    digests = b"".join([md5(data[a:b]).digest() for a, b in pairwise(offsets)])
    hex_offsets = array("i", range(0, 32 * (n + 1), 32)).tobytes()
    return pa.StringArray.from_buffers(n, pa.py_buffer(hex_offsets), pa.py_buffer(digests.hex().encode("ascii")))


try:  # CPython's own MD5: a quarter less CPU per short row than OpenSSL's (context set-up)
    from _md5 import md5 as _page_md5  # type: ignore[import-not-found]  # CPython's module, no stub
except ImportError:  # a build without it (FIPS builds): OpenSSL's, the same digest
    _page_md5 = hashlib.md5


def duckdb_row_hashes(batch: pa.RecordBatch, columns: Sequence[Column]) -> pa.Array:
    """`_row_hash` of every row of a batch computed by DuckDB over the Arrow data with the
    DuckDB rendering (`row_hash_sql`): the reference `arrow_row_hashes` is tested against
    (the extract used it until issue 18). Returns a string array of the batch's length."""
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
