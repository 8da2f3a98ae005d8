"""What a source bulk load accepts: every CSV field checked against its column's logical type.

The same rules on SQLite and MySQL (README, "When data is bad"; docs/architecture.md, contract
13), as strict as MySQL's strict mode and stricter where an engine further down would change
the value or refuse it:

* an empty field is NULL; any other text is kept byte for byte (spaces, tabs, CR, LF, quotes,
  backslashes, emoji), whatever line endings the file uses;
* a MySQL zero date (`0000-00-00` or `0000-00-00 00:00:00`) is NULL;
* refused, naming the file, line, column and value: a NUL character (PostgreSQL cannot store
  it); a `char(n)`/`varchar(n)` value longer than n characters; a `char(n)` value ending in a
  space (MySQL CHAR drops trailing spaces); a `text` value over 65,535 UTF-8 bytes (MySQL
  TEXT); an integer that is not digits or is out of the 32/64-bit range; a decimal that is not
  digits, has more digits before the point than the precision allows or more decimal places
  than its scale; a double that is not a finite number; a timestamp that is not
  `YYYY-MM-DD[ HH:MM:SS[.ffffff]]`, or not a real date between years 1000 and 9999 (a
  zero-in-date like `2017-10-00`, February 30th);
* a duplicate primary key;
* a record whose field count differs from the header (a file cut in the middle of a row).

Empty lines are not records: they are skipped wherever they are (a file may end in several).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from ...declarations import Column, Table
from ..base import SourceError
from .csv_files import open_csv

ZERO_DATES = ("0000-00-00 00:00:00", "0000-00-00")
"""MySQL zero dates: read as NULL (documented rule)."""
TEXT_BYTES = 65_535
"""MySQL TEXT's limit in bytes."""
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?")
_DOUBLE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})(?: (?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<frac>[0-9]{1,6}))?)?"
)
_RANGES = {"integer": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}


class BadValue(ValueError):
    """A field its column cannot hold; the message says why (the caller names file and line)."""


Check = Callable[[str], str | None]
"""A column's check: the CSV text -> the value to store (None: NULL); BadValue if refused."""


def column_check(column: Column) -> Check:
    """The check of one declared column (see the module docstring for the rules)."""
    t = column.type
    if t.kind in ("char", "varchar"):
        n = t.length or 0
        trailing = t.kind == "char"

        def check_string(text: str) -> str:
            if len(text) > n:
                raise BadValue(f"is {len(text)} characters long, more than {t.kind}({n}) holds")
            if trailing and text.endswith(" "):
                raise BadValue(f"ends with a space, which a MySQL char({n}) column drops")
            return text

        return check_string
    if t.kind == "text":

        def check_text(text: str) -> str:
            if len(text) * 4 > TEXT_BYTES and len(text.encode("utf-8")) > TEXT_BYTES:
                raise BadValue(f"is {len(text.encode('utf-8')):,} bytes long, more than a text column holds (65,535)")
            return text

        return check_text
    if t.kind in _RANGES:
        low, high = _RANGES[t.kind]

        def check_integer(text: str) -> str:
            if not _INTEGER.fullmatch(text):
                raise BadValue(f"is not an {t.kind}")
            if not low <= int(text) <= high:
                raise BadValue(f"is out of the {t.kind} range ({low}..{high})")
            return text

        return check_integer
    if t.kind == "decimal":
        whole, scale = (t.length or 0) - (t.scale or 0), t.scale or 0

        def check_decimal(text: str) -> str:
            m = _DECIMAL.fullmatch(text)
            if not m or not (m["int"] or m["frac"]):
                raise BadValue(f"is not a decimal({t.length},{t.scale})")
            if len(m["int"].lstrip("0")) > whole:
                raise BadValue(f"is out of the decimal({t.length},{t.scale}) range")
            if len(m["frac"] or "") > scale:
                raise BadValue(f"has more than {scale} decimal places (decimal({t.length},{t.scale}) would round it)")
            return text

        return check_decimal
    if t.kind == "double":

        def check_double(text: str) -> str:
            if not _DOUBLE.fullmatch(text):
                raise BadValue("is not a number")
            if abs(float(text)) == float("inf"):
                raise BadValue("is out of the double range")
            return text

        return check_double
    assert t.kind == "timestamp", t.kind

    def check_timestamp(text: str) -> str | None:
        if text in ZERO_DATES:
            return None
        m = _TIMESTAMP.fullmatch(text)
        if not m:
            raise BadValue("is not a timestamp (YYYY-MM-DD HH:MM:SS)")
        try:
            value = datetime.fromisoformat(f"{m['date']} {m['time'] or '00:00:00'}")
        except ValueError as exc:  # day 00, month 13, February 30th, 25:00 ...
            raise BadValue(f"is not a valid timestamp ({exc})") from None
        if value.year < 1000:
            raise BadValue("is before the year 1000 (MySQL DATETIME's range)")
        if len(m["frac"] or "") > (t.length or 0):
            raise BadValue(f"has more fraction digits than a {t.kind}({t.length or 0}) keeps (it would be rounded)")
        return text if m["time"] else text + " 00:00:00"

    return check_timestamp


def checked_records(table: Table, path: Path) -> Iterator[tuple[int, list[str | None]]]:
    """(line number, values) of every record of a CSV file after its header, each field checked.

    Raises SourceError naming the file, the line (where the record starts), the column and the
    value, for the first field refused, a wrong field count or a duplicate primary key.
    """
    columns = table.csv_columns
    names = [c.name for c in columns]
    width = len(columns)
    checks = [column_check(c) for c in columns]
    key_idx = [names.index(k) for k in table.primary_key if k in names] if not table.surrogate else []
    seen: dict[tuple, int] = {}
    with open_csv(path) as reader:
        next(reader, None)
        end = reader.line_num
        for record in reader:
            line, end = end + 1, reader.line_num
            if not record:  # an empty line: not a record
                continue
            if len(record) != width:
                raise SourceError(
                    f"{path.name}, line {line}: {len(record)} fields, expected {width} ({', '.join(names)}); "
                    "a row cut short or with an unquoted comma"
                )
            values: list[str | None] = []
            for i, text in enumerate(record):
                if text == "":
                    if i in key_idx:
                        raise SourceError(f"{path.name}, line {line}, column {names[i]}: empty in a key column")
                    values.append(None)
                    continue
                try:
                    if "\x00" in text:
                        raise BadValue("contains a NUL character, which PostgreSQL cannot store")
                    values.append(checks[i](text))
                except BadValue as exc:
                    raise SourceError(f"{path.name}, line {line}, column {names[i]}: {_shown(text)} {exc}") from None
            if key_idx:
                key = tuple(values[i] for i in key_idx)
                if key in seen:
                    shown = ", ".join(f"{names[i]}={values[i]!r}" for i in key_idx)
                    raise SourceError(f"{path.name}, line {line}: duplicate key ({shown}), first on line {seen[key]}")
                seen[key] = line
            yield line, values


def _shown(text: str) -> str:
    """A refused value as the message shows it: quoted, cut after 60 characters."""
    return repr(text if len(text) <= 60 else text[:60] + "...")
