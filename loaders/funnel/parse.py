"""Parsing a block of a funnel file's lines into string columns (docs/architecture.md, contract 6).

Two parsers, which must agree on every valid row (tests/test_funnel_parsers.py proves it on
generated files):

* fast: pyarrow's CSV reader on the whole block, in 1 MB pieces on pyarrow's thread pool;
* fallback, line by line with Python's csv module: for the rare block pyarrow cannot take as it
  is (invalid UTF-8, a row with the wrong number of columns, an empty line, a quoted line break),
  where every row needs its own line number and reason.

Both read RFC 4180 quoting (`"a,b"`, `""` for a quote), CRLF or LF line ends, and ignore empty
lines (they are not rows: neither counted nor rejected, as pyarrow's `ignore_empty_lines`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache

import pyarrow as pa
import pyarrow.csv as pacsv

from ..declarations import FunnelDeclaration
from .rejects import BlockRejects


class FunnelError(RuntimeError):
    """A funnel file cannot be converted; the message names the file and why."""


@dataclass(frozen=True)
class Parsed:
    """A block's rows as strings (the file's columns), their line numbers (None: consecutive from
    the block's first line) and how many non-empty lines the block had (rows, valid or not)."""

    table: pa.Table
    line_numbers: pa.Array | None
    rows: int


class FileFormat:
    """What parsing needs from the declaration, built once per declaration."""

    def __init__(self, declaration: FunnelDeclaration):
        self.declaration = declaration
        self.header = declaration.header
        self.string_schema = pa.schema([(name, pa.string()) for name in self.header])
        self.read_options = pacsv.ReadOptions(column_names=list(self.header), use_threads=True, block_size=1 << 20)
        self.convert_options = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in self.header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )


@cache
def file_format(declaration: FunnelDeclaration) -> FileFormat:
    """The parsing options of a declaration (built once per declaration and process)."""
    return FileFormat(declaration)


def check_header(first_line: bytes, source: str, fmt: FileFormat) -> None:
    """Raise FunnelError unless the line is the declared header (a UTF-8 byte-order mark allowed)."""
    if b"\x00" in first_line:
        raise FunnelError(f"{source} is not a funnel file: it is binary (NUL bytes in its first line)")
    try:
        text = first_line.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise FunnelError(f"{source} is not a funnel file: its first line is not UTF-8 text") from None
    if text.split(",") != list(fmt.header):
        shown = text if len(text) <= 120 else text[:117] + "..."
        raise FunnelError(f"{source} is not a funnel file: header {shown!r}, expected {','.join(fmt.header)!r}")


def parse_block_slowly(first_line: int, block: bytes, rejects: BlockRejects, fmt: FileFormat) -> Parsed:
    """Line by line: exact line numbers and reasons (invalid_utf8, wrong_column_count)."""
    columns: list[list[str]] = [[] for _ in fmt.header]
    lines: list[int] = []
    rows = 0
    for offset, raw in enumerate(block.split(b"\n")[:-1]):
        line = first_line + offset
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        if not raw:
            continue  # an empty line is not a row
        rows += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            rejects.add(line, "invalid_utf8", raw.decode("utf-8", "backslashreplace"))
            continue
        values = _split(text)
        if len(values) != len(fmt.header):
            rejects.add(line, "wrong_column_count", text)
            continue
        for column, value in zip(columns, values, strict=True):
            column.append(value)
        lines.append(line)
    table = pa.table([pa.array(col, pa.string()) for col in columns], schema=fmt.string_schema)
    return Parsed(table, pa.array(lines, pa.int64()), rows)


def _split(line: str) -> list[str]:
    """One line's fields as pyarrow reads them: RFC 4180 quoting, and text after a closing quote
    kept (`"ab"c` is `abc`); an unterminated quote (a quoted line break) gives no field."""
    try:
        return next(csv.reader([line], strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return []
        return next(csv.reader([line]))


def read_fast(block: bytes | memoryview, lines: int, fmt: FileFormat) -> pa.Table | None:
    """The block parsed by pyarrow, or None when the result cannot be trusted row for line: a
    malformed row, invalid UTF-8, or fewer rows than lines (empty lines, quoted line breaks)."""
    malformed: list[str] = []

    def on_invalid(row) -> str:
        malformed.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(block)),
            read_options=fmt.read_options,
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=fmt.convert_options,
        )
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere in the block
        return None
    if malformed or table.num_rows != lines:
        return None
    return table


def parse_block(
    first_line: int, block: bytes | memoryview, lines: int, rejects: BlockRejects, fmt: FileFormat
) -> Parsed:
    """The block's rows as strings and their line numbers; malformed rows go to the rejects.
    `lines` is the number of line breaks in the block.

    The block is parsed in 1 MB pieces (about twice as fast as one piece of 16 MB: each piece
    stays in the CPU cache) on pyarrow's thread pool, which also takes the other core whenever
    the Parquet writer waits.
    """
    table = read_fast(block, lines, fmt)
    if table is None:
        return parse_block_slowly(first_line, bytes(block), rejects, fmt)
    return Parsed(table, None, lines)
