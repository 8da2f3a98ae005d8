"""SQLite, the embedded default source: a file the project creates and fills itself."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

from ..declarations import Table
from . import ranges
from .base import SourceEngine

SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
"""SQLite's clock as text with milliseconds: the form its cursor columns are stored in."""


class SQLiteSource(SourceEngine):
    name = "sqlite"
    schemes = ("sqlite",)
    paramstyle = "?"
    _quote_char = '"'

    @property
    def path(self) -> Path:
        p = self._parts.path
        return Path(unquote(p[1:] if p.startswith("//") else p))

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        from ..verify.checksum import register_sqlite

        register_sqlite(conn)  # md5() and hex_int() for `dwh verify` (SQLite has no MD5)
        return conn

    def connectorx_url(self) -> str:
        return f"sqlite://{self.path.resolve()}"

    def now(self) -> datetime:
        return datetime.fromisoformat(self.execute(f"SELECT {SQLITE_NOW}")[0][0])

    def timestamp_literal(self, value: datetime) -> str:
        # stored as text with milliseconds: compare like for like
        return "'" + value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}'"

    def page_key(self, table: Table) -> list[tuple[str, str]]:
        # SQLite stores rows in rowid order
        return [("rowid", "__page_key")]

    def estimate_rows(self, table: Table) -> int:
        low, high = self.execute(f"SELECT min(rowid), max(rowid) FROM {self.quote(table.name)}")[0]
        return 0 if low is None else high - low + 1

    def split_points(self, table: Table, parts: int) -> list[object]:
        return ranges.rowid_cuts(self, table, parts)

    def table_exists(self, table: Table) -> bool:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
        return self.execute(sql, (table.name,))[0][0] > 0
