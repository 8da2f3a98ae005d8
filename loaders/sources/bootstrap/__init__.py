"""`dwh source load`: create the Olist schema in the source database and bulk-load the CSVs.

A one-time step, apart from what the hourly extract needs: MySQL uses `LOAD DATA LOCAL
INFILE` (as the seed design did), SQLite a streaming executemany.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...declarations import Table
from ..base import SourceEngine, SourceError
from .base import Bootstrap, BulkLoadReport
from .csv_files import check_header
from .mysql import MySQLBootstrap
from .sqlite import SQLiteBootstrap

BOOTSTRAPS: dict[str, type[Bootstrap]] = {cls.engine_name: cls for cls in (SQLiteBootstrap, MySQLBootstrap)}


def bootstrap_for(engine: SourceEngine) -> Bootstrap:
    return BOOTSTRAPS[engine.name](engine)


def load_folder(
    engine: SourceEngine,
    tables: list[Table],
    folder: Path,
    replace: bool = False,
    progress: Callable[[BulkLoadReport], None] | None = None,
) -> list[BulkLoadReport]:
    """Create the schema and bulk-load every declared table from its CSV file in `folder`.

    All or nothing for the whole folder: every field is checked against its declared type
    (values.py, the same rules on every engine) and a refused value, a failed load or an
    interrupted one leaves the source as it was, so a rerun needs no flag. Raises SourceError
    naming the file for a missing file, a wrong header or a table that already has rows
    (checked before anything is written), and the file, line, column and value for a bad field.
    """
    folder = Path(folder)
    missing = [t.csv_file for t in tables if not (folder / t.csv_file).is_file()]
    if missing:
        raise SourceError(f"missing file(s) in {folder}: {', '.join(missing)}")
    for table in tables:
        check_header(table, folder / table.csv_file)
    if not replace:
        for table in tables:
            if engine.table_exists(table) and engine.row_count(table):
                raise SourceError(
                    f"table {table.name!r} already has rows; load into an empty source (use --replace); "
                    "nothing was loaded (the source is as it was)"
                )
    try:
        return bootstrap_for(engine).load_all(tables, folder, replace, progress)
    except SourceError as exc:
        raise SourceError(f"{exc}; nothing was loaded (the source is as it was)") from None


__all__ = ["Bootstrap", "BulkLoadReport", "bootstrap_for", "load_folder"]
