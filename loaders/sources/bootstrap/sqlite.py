"""Bootstrap of the embedded SQLite source: DDL with a trigger for the cursor, executemany."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ...declarations import Table
from ..base import SourceError
from ..sqlite import SQLITE_NOW
from .base import Bootstrap, BulkLoadReport
from .values import checked_records


class SQLiteBootstrap(Bootstrap):
    engine_name = "sqlite"

    def surrogate_column(self, name: str) -> str:
        return f"{self.q(name)} INTEGER PRIMARY KEY AUTOINCREMENT"

    def cursor_column(self, name: str) -> str:
        return f"{self.q(name)} TIMESTAMP NOT NULL DEFAULT ({SQLITE_NOW})"

    def primary_key_clause(self, table: Table) -> str | None:
        return None if table.surrogate else super().primary_key_clause(table)

    def after_create(self, table: Table) -> None:
        q, t = self.q, self.q(table.name)
        self.engine.execute(
            f"CREATE INDEX IF NOT EXISTS {q(f'{table.name}__{table.cursor}')} ON {t} ({q(table.cursor)})"
        )
        # SQLite has no ON UPDATE: a trigger keeps the change column.
        self.engine.execute(
            f"CREATE TRIGGER IF NOT EXISTS {q(table.name + '__touch')} AFTER UPDATE ON {t} "
            f"FOR EACH ROW WHEN NEW.{q(table.cursor)} IS OLD.{q(table.cursor)} BEGIN "
            f"UPDATE {t} SET {q(table.cursor)} = {SQLITE_NOW} WHERE rowid = NEW.rowid; END"
        )

    def load_all(
        self, tables: list[Table], folder: Path, replace: bool, progress: Callable[[BulkLoadReport], None] | None
    ) -> list[BulkLoadReport]:
        """One transaction for the whole folder (SQLite's DDL is transactional): a refused
        value anywhere rolls back every table, created or replaced, to what it was."""
        reports = []
        with self.engine.transaction():
            for table in tables:
                started = time.perf_counter()
                if replace:
                    self.drop_table(table)
                self.create_table(table)
                path = folder / table.csv_file
                read, stored = self._insert(table, path)
                reports.append(self.report(table, path, read, stored, started))
                if progress:
                    progress(reports[-1])
        return reports

    def _insert(self, table: Table, csv_path: Path) -> tuple[int, int]:
        names = [c.name for c in table.csv_columns]
        sql = (
            f"INSERT INTO {self.q(table.name)} ({', '.join(self.q(n) for n in names)}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
        lines: list[int] = [0]

        def rows() -> Iterator[list[str | None]]:
            for line, values in checked_records(table, csv_path):
                lines[0] = line
                yield values

        counter = _Counter(rows())
        cur = self.engine._conn.cursor()
        try:
            cur.executemany(sql, counter)
        except sqlite3.IntegrityError as exc:
            raise SourceError(f"{csv_path.name}, line {lines[0]}: {exc}") from None
        finally:
            cur.close()
        return counter.count, self.engine.row_count(table)


class _Counter:
    """Counts the rows an iterator yields (for the rows-read report)."""

    def __init__(self, it: Iterator):
        self._it, self.count = it, 0

    def __iter__(self) -> _Counter:
        return self

    def __next__(self):
        value = next(self._it)
        self.count += 1
        return value
