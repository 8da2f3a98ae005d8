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

    Raises SourceError naming the file for a missing file or a wrong header (checked for every
    file before anything is loaded), and the file, line or column for bad rows.
    """
    folder = Path(folder)
    missing = [t.csv_file for t in tables if not (folder / t.csv_file).is_file()]
    if missing:
        raise SourceError(f"missing file(s) in {folder}: {', '.join(missing)}")
    for table in tables:
        check_header(table, folder / table.csv_file)
    boot = bootstrap_for(engine)
    reports = []
    for table in tables:
        if replace:
            boot.drop_table(table)
        boot.create_table(table)
        report = boot.bulk_load(table, folder / table.csv_file)
        if progress:
            progress(report)
        reports.append(report)
    return reports


__all__ = ["Bootstrap", "BulkLoadReport", "bootstrap_for", "load_folder"]
