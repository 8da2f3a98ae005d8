"""Bootstrap of the embedded SQLite source: DDL with a trigger for the cursor, executemany."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ...declarations import Table
from ..base import SourceError
from ..sqlite import SQLITE_NOW
from .base import ZERO_DATES, Bootstrap
from .csv_files import open_csv


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

    def load_file(self, table: Table, csv_path: Path) -> tuple[int, int]:
        names = [c.name for c in table.csv_columns]
        width = len(names)
        timestamp_idx = [i for i, c in enumerate(table.csv_columns) if c.type.kind == "timestamp"]
        sql = (
            f"INSERT INTO {self.q(table.name)} ({', '.join(self.q(n) for n in names)}) "
            f"VALUES ({', '.join('?' * width)})"
        )

        def rows() -> Iterator[list[str | None]]:
            with open_csv(csv_path) as reader:
                next(reader)
                for record in reader:
                    if len(record) != width:
                        raise SourceError(
                            f"{csv_path.name}, line {reader.line_num}: {len(record)} fields, "
                            f"expected {width} ({', '.join(names)})"
                        )
                    values: list[str | None] = [v if v != "" else None for v in record]
                    for i in timestamp_idx:
                        if values[i] in ZERO_DATES:
                            values[i] = None
                    yield values

        counter = _Counter(rows())
        with self.engine.transaction():
            cur = self.engine._conn.cursor()
            try:
                cur.executemany(sql, counter)
            except sqlite3.IntegrityError as exc:
                raise SourceError(f"{csv_path.name}, line {counter.count + 1}: {exc}") from None
            stored = self.engine.row_count(table)
            self._check_types(table, csv_path)
        return counter.count, stored

    def _check_types(self, table: Table, csv_path: Path) -> None:
        """SQLite stores a malformed number as text: refuse it like MySQL's strict mode."""
        expected = {"integer": "'integer'", "bigint": "'integer'", "double": "'real','integer'"}
        for c in table.csv_columns:
            col = self.q(c.name)
            if c.type.kind == "decimal":
                condition = f"{col} GLOB '*[^0-9.+-]*' OR {col} NOT GLOB '*[0-9]*'"
            elif c.type.kind in expected:
                condition = f"typeof({col}) NOT IN ({expected[c.type.kind]}, 'null')"
            else:
                continue
            bad = self.engine.execute(f"SELECT {col} FROM {self.q(table.name)} WHERE {condition} LIMIT 1")
            if bad:
                raise SourceError(f"{csv_path.name}: column {c.name!r} has a value that is not a number: {bad[0][0]!r}")


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
