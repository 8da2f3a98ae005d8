"""Reading the Olist CSV files as they come (docs/data.md: BOM, CRLF, quoted multi-line text)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...declarations import Table
from ..base import SourceError


@contextmanager
def open_csv(path: Path) -> Iterator[Any]:
    """A csv reader that handles the BOM, CRLF and quoted multi-line fields; SourceError names
    the file when it is missing, not UTF-8 or malformed."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            yield csv.reader(handle, strict=True)
    except FileNotFoundError:
        raise SourceError(f"missing file: {path}") from None
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise SourceError(f"{path.name}: malformed CSV: {exc}") from None


def check_header(table: Table, path: Path) -> None:
    """The file's header must be the declared CSV columns, in order."""
    expected = [c.name for c in table.csv_columns]
    with open_csv(path) as reader:
        header = next(reader, None)
    if header != expected:
        raise SourceError(
            f"{path.name}: wrong header for table {table.name!r}: got {','.join(header or [])!r}, "
            f"expected {','.join(expected)!r}"
        )
