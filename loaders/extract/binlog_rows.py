"""Fast decoding of binary-log row images (binlog capture, loaders/extract/binlog.py).

mysql-replication decodes a row event's rows in pure Python at about 0.2 ms a row (a method
call, a bitmap test and a packet read per column). `RowImages` reads the rows of
WRITE/UPDATE/DELETE_ROWS events itself instead, from the event's bytes (framed by
loaders/extract/binlog.py), with one Python function per table map and image variant, generated
from the columns' types (`compile_image`): fixed-width integers and floats with
`struct.unpack_from`, length-prefixed strings, MySQL's packed DECIMAL, DATETIME2/TIMESTAMP2 with
fractional seconds and DATE, the NULL bitmap as one integer, the columns-present bitmap of a
partial image (absent columns are None; capture refuses partial images of declared columns
before decoding). The wire formats are MySQL's (sql/log_event.cc, `Rows_log_event`;
strings/decimal.c, `decimal2bin`; sql-common/my_time.c, `TIME_to_longlong_datetime_packed`) and
match the library's own decoding value for value (tests/test_binlog.py checks it on a real
server).

A table map with a column type this module does not decode (TIME, JSON, ENUM, SET, BIT,
GEOMETRY, the pre-5.6 temporal types) is decoded by the library: `RowImages.for_columns`
returns None. `decode` returns None for an event whose rows do not end exactly at the end of
its body, and capture then fails loudly. Correctness first: the fast path only ever takes what it
can read exactly.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

# mysql-replication's FIELD_TYPE numbers (MySQL's enum_field_types)
TINY, SHORT, LONG, FLOAT, DOUBLE, LONGLONG, INT24, DATE, YEAR = 1, 2, 3, 4, 5, 8, 9, 10, 13
VARCHAR, TIMESTAMP2, DATETIME2, NEWDECIMAL, BLOB, STRING = 15, 17, 18, 246, 252, 254
# event types: WRITE/UPDATE/DELETE_ROWS v1 (MariaDB, MySQL 5.1-5.5) and v2 (MySQL 5.6+)
WRITE_ROWS, UPDATE_ROWS, DELETE_ROWS = frozenset({23, 30}), frozenset({24, 31}), frozenset({25, 32})

_STRUCTS = {
    (TINY, False): ("<b", 1),
    (SHORT, False): ("<h", 2),
    (SHORT, True): ("<H", 2),
    (LONG, False): ("<i", 4),
    (LONG, True): ("<I", 4),
    (LONGLONG, False): ("<q", 8),
    (LONGLONG, True): ("<Q", 8),
    (FLOAT, False): ("<f", 4),
    (FLOAT, True): ("<f", 4),
    (DOUBLE, False): ("<d", 8),
    (DOUBLE, True): ("<d", 8),
}
_DECIMAL_BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)  # bytes of a group of 0-9 leftover digits
_EPOCH = datetime(1970, 1, 1)

Image = Callable[[bytes, int], tuple[list[Any], int]]
"""(event body, offset of a row image) -> (the wanted values, offset after the image)."""


def _encoding(column: Any) -> str | None:
    """The Python codec for a string column's character set as the library picks it (pymysql's
    name for the MySQL charset; UTF-8 when the log names none), or None where Python has no such
    codec (the library then returns the bytes)."""
    from pymysqlreplication.row_event import RowsEvent  # type: ignore[import-untyped]  # no py.typed

    name = getattr(column, "character_set_name", None)
    encoding = RowsEvent.charset_to_encoding(name) if name is not None else "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        return None
    return str(encoding)


def _decimal_reader(precision: int, scale: int) -> tuple[Callable[[bytes, int], Decimal], int]:
    """A reader of MySQL's packed DECIMAL(precision, scale) (`decimal2bin`: groups of nine digits
    in four big-endian bytes, the leftover digits in 1-4 bytes, the sign in the first bit, negative
    numbers with every bit inverted) and its size in bytes."""
    whole_groups, whole_rest = divmod(precision - scale, 9)
    frac_groups, frac_rest = divmod(scale, 9)
    lead, tail = _DECIMAL_BYTES[whole_rest], _DECIMAL_BYTES[frac_rest]
    size = lead + 4 * (whole_groups + frac_groups) + tail
    sign_bit, all_bits = 1 << (8 * size - 1), (1 << (8 * size)) - 1
    tail_bits, tail_mask = 8 * tail, (1 << (8 * tail)) - 1
    frac_digits = f"0{frac_rest}d"

    def read(d: bytes, p: int) -> Decimal:
        value = int.from_bytes(d[p : p + size], "big")
        negative = not value & sign_bit
        value ^= all_bits ^ sign_bit if negative else sign_bit
        frac = ""
        if tail:
            frac = format(value & tail_mask, frac_digits)
            value >>= tail_bits
        for _ in range(frac_groups):
            frac = f"{value & 0xFFFFFFFF:09d}{frac}"
            value >>= 32
        whole = 0
        scale9 = 1
        for _ in range(whole_groups):
            whole += (value & 0xFFFFFFFF) * scale9
            scale9 *= 1_000_000_000
            value >>= 32
        whole += value * scale9  # the leading leftover digits
        return Decimal(f"{'-' if negative else ''}{whole}.{frac}" if scale else f"{'-' if negative else ''}{whole}")

    return read, size


def _fraction(fsp: int) -> tuple[int, int, int]:
    """(bytes, divisor, multiplier) of the fractional seconds of a DATETIME2/TIMESTAMP2/TIME2 with
    `fsp` digits: 0-3 big-endian bytes holding an even number of digits, so an odd precision's
    value is divided by 10, then scaled to microseconds."""
    return (fsp + 1) // 2, 10 if fsp % 2 else 1, 10 ** (6 - fsp)


def _datetime2_reader(fsp: int) -> tuple[Callable[[bytes, int], datetime | None], int]:
    """DATETIME2 (MySQL 5.6+, MariaDB 10.1+): 40 bits big-endian (a sign bit, year*13+month in 17,
    day 5, hour 5, minute 6, second 6) then the fraction; None for a date Python cannot hold
    (0000-00-00), as the library."""
    fbytes, div, mul = _fraction(fsp)

    def read(d: bytes, p: int) -> datetime | None:
        v = int.from_bytes(d[p : p + 5], "big")
        ym = (v >> 22) & 0x1FFFF
        micro = (int.from_bytes(d[p + 5 : p + 5 + fbytes], "big") // div) * mul if fbytes else 0
        try:
            return datetime(ym // 13, ym % 13, (v >> 17) & 31, (v >> 12) & 31, (v >> 6) & 63, v & 63, micro)
        except ValueError:
            return None

    return read, 5 + fbytes


def _timestamp2_reader(fsp: int) -> tuple[Callable[[bytes, int], datetime], int]:
    """TIMESTAMP2: seconds since the epoch, 4 bytes big-endian, then the fraction; naive UTC."""
    fbytes, div, mul = _fraction(fsp)

    def read(d: bytes, p: int) -> datetime:
        t = _EPOCH + timedelta(seconds=int.from_bytes(d[p : p + 4], "big", signed=True))
        micro = (int.from_bytes(d[p + 4 : p + 4 + fbytes], "big") // div) * mul if fbytes else 0
        return t.replace(microsecond=micro) if micro else t

    return read, 4 + fbytes


def _date(d: bytes, p: int) -> date | None:
    """DATE: 3 bytes little-endian, day in 5 bits, month 4, year 15; None for a zero part."""
    v = int.from_bytes(d[p : p + 3], "little")
    year, month, day = v >> 9 & 0x7FFF, v >> 5 & 15, v & 31
    return date(year, month, day) if year and month and day else None


def compile_image(columns: list[Any], present: list[bool], wanted: list[int | None]) -> Image | None:
    """A function that reads one row image of a table with `columns` (mysql-replication's Column
    objects, from the table map) of which `present` are in the image, and returns the values of
    the columns at the indexes in `wanted` (None: a None value), in that order, and the offset
    after the image. Columns not wanted are stepped over without being decoded. None when a
    present column has a type this module does not decode (the library then decodes the table)."""
    lines = ["def image(d, p):"]
    env: dict[str, Any] = {}
    count = sum(present)
    nbytes = (count + 7) // 8
    lines.append(f"    n = int.from_bytes(d[p:p + {nbytes}], 'little')")
    lines.append(f"    p += {nbytes}")
    wanted_set = {i for i in wanted if i is not None}
    bit = 0
    for i, column in enumerate(columns):
        keep = i in wanted_set
        if not present[i]:
            if keep:
                lines.append(f"    v{i} = None")
            continue
        code = _column_code(column, i, keep, env)
        if code is None:
            return None
        lines.append(f"    if n & {1 << bit}:")
        lines.append(f"        v{i} = None" if keep else "        pass")
        lines.append("    else:")
        lines.extend("        " + line for line in code)
        bit += 1
    values = ", ".join("None" if i is None else f"v{i}" for i in wanted)
    lines.append(f"    return [{values}], p")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<binlog row image: {count} columns>", "exec"), env)  # our own text
    image: Image = env["image"]
    image.source = source  # type: ignore[attr-defined]  # for a reader of a failing test
    return image


def _column_code(column: Any, i: int, keep: bool, env: dict[str, Any]) -> list[str] | None:
    """The lines that read (or, not `keep`, step over) column `i` at offset p into `v{i}`."""
    kind = column.type
    unsigned = bool(getattr(column, "unsigned", False))
    if kind == TINY and unsigned:
        return [f"v{i} = d[p]", "p += 1"] if keep else ["p += 1"]
    if kind == YEAR:
        return [f"v{i} = d[p] + 1900", "p += 1"] if keep else ["p += 1"]
    if (kind, unsigned) in _STRUCTS:
        fmt, size = _STRUCTS[(kind, unsigned)]
        env[f"u{i}"] = struct.Struct(fmt).unpack_from
        return [f"v{i} = u{i}(d, p)[0]", f"p += {size}"] if keep else [f"p += {size}"]
    if kind == INT24:
        return [f"v{i} = int.from_bytes(d[p:p + 3], 'little', signed={not unsigned})", "p += 3"] if keep else ["p += 3"]
    if kind in (VARCHAR, STRING, BLOB):
        if kind == BLOB:
            width = int(column.length_size)
        elif getattr(column, "max_length", None) is None:
            return None
        else:
            width = 2 if column.max_length > 255 else 1
        length = "d[p]" if width == 1 else f"int.from_bytes(d[p:p + {width}], 'little')"
        if not keep:
            return [f"p += {width} + {length}"]
        encoding = _encoding(column)
        text = "d[p:p + l]" if encoding is None else f"d[p:p + l].decode({encoding!r})"
        return [f"l = {length}", f"p += {width}", f"v{i} = {text}", "p += l"]
    if kind == NEWDECIMAL:
        read, size = _decimal_reader(int(column.precision), int(column.decimals))
        env[f"r{i}"] = read
        return [f"v{i} = r{i}(d, p)", f"p += {size}"] if keep else [f"p += {size}"]
    if kind in (DATETIME2, TIMESTAMP2):
        maker = _datetime2_reader if kind == DATETIME2 else _timestamp2_reader
        read_time, size = maker(int(column.fsp))
        env[f"r{i}"] = read_time
        return [f"v{i} = r{i}(d, p)", f"p += {size}"] if keep else [f"p += {size}"]
    if kind == DATE:
        env["read_date"] = _date
        return [f"v{i} = read_date(d, p)", "p += 3"] if keep else ["p += 3"]
    return None


def _bits(bitmap: bytes, count: int) -> list[bool]:
    return [bool(bitmap[i >> 3] & (1 << (i & 7))) for i in range(count)]


class RowImages:
    """The row decoders of one table map (one table's columns as the log describes them) for a
    declared table: an event's rows as lists of the declared columns' values (`declared`: the
    index of each declared column among the table map's, None for one the source lacks), a
    delete's before image keeping only the columns in `tombstone` (the others None)."""

    def __init__(self, columns: list[Any], declared: list[int | None], tombstone: list[int | None]):
        self.columns = columns
        self.declared, self.tombstone = declared, tombstone
        self._images: dict[tuple[bytes, str], Image | None] = {}

    @classmethod
    def for_columns(cls, columns: list[Any], names: list[str], keep: frozenset[str]) -> RowImages | None:
        """Decoders for a table map's `columns` giving the declared `names` (a delete keeps the
        columns in `keep`), or None when a column has a type only the library decodes."""
        index = {c.name: i for i, c in enumerate(columns)}
        images = cls(
            columns,
            [index.get(n) for n in names],
            [index.get(n) if n in keep else None for n in names],
        )
        every = [True] * len(columns)
        if compile_image(columns, every, list(range(len(columns)))) is None:
            return None
        return images

    def _image(self, bitmap: bytes, variant: str) -> Image | None:
        key = (bytes(bitmap), variant)
        if key not in self._images:
            present = _bits(bitmap, len(self.columns))
            wanted: list[int | None] = {
                "declared": self.declared,
                "tombstone": self.tombstone,
                "skip": [],
                "all": list[int | None](range(len(self.columns))),
            }[variant]
            self._images[key] = compile_image(self.columns, present, wanted)
        return self._images[key]

    def rows(self, event: Any, variant: str = "") -> list[list[Any]] | None:
        """The rows of a mysql-replication WRITE/UPDATE/DELETE_ROWS event (`decode` on the bytes
        the library framed; the library's own reading is left untouched), for comparing the two
        decodings in tests."""
        wrapper = event.packet
        packet = wrapper.packet
        start = packet._position
        return self.decode(
            event.event_type,
            packet._data,
            start,
            start + event.event_size - wrapper.read_bytes,
            event.columns_present_bitmap,
            getattr(event, "columns_present_bitmap2", b""),
            variant,
        )

    def decode(
        self, kind: int, d: bytes, start: int, end: int, present: bytes, present_after: bytes, variant: str = ""
    ) -> list[list[Any]] | None:
        """The rows of a WRITE/UPDATE/DELETE_ROWS event whose row images are `d[start:end]`, with
        the columns-present bitmaps `present` (and `present_after`, an update's after image): the
        declared columns of an insert's image and an update's after image, the tombstone columns of
        a delete's image (`variant` "all": every column of every image instead, an update's before
        image then its after image, as separate rows). None when the bytes do not read exactly
        (the rows do not end at `end`, a value does not decode) or a column type needs the
        library."""
        try:
            if kind in UPDATE_ROWS:
                before = self._image(present, variant or "skip")
                after = self._image(present_after, variant or "declared")
                if before is None or after is None:
                    return None
                out: list[list[Any]] = []
                p = start
                while p < end:
                    old, p = before(d, p)
                    new, p = after(d, p)
                    if variant:
                        out.append(old)
                    out.append(new)
            elif kind in WRITE_ROWS or kind in DELETE_ROWS:
                image = self._image(present, variant or ("declared" if kind in WRITE_ROWS else "tombstone"))
                if image is None:
                    return None
                out = []
                p = start
                while p < end:
                    row, p = image(d, p)
                    out.append(row)
            else:
                return None
        except (IndexError, ValueError, UnicodeDecodeError, struct.error):
            return None
        return out if p == end else None
