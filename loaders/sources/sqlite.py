"""SQLite, the embedded default source: a file the project creates and fills itself."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

from ..declarations import Table
from . import ranges
from .base import SourceEngine, SourceError

SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
"""SQLite's clock as text with milliseconds: the form its cursor columns are stored in."""


class SQLiteSource(SourceEngine):
    name = "sqlite"
    schemes = ("sqlite",)
    paramstyle = "?"
    _quote_char = '"'
    # One table at a time: ConnectorX links its own copy of SQLite, and POSIX locks cannot tell
    # two copies in one process apart, so a connection that one copy opens while the other reads
    # may take itself for the only one and reset the WAL's shared-memory file under the reader
    # (sqlite.org/howtocorrupt.html, 2.2.1): seen as a SIGBUS in a parallel extract of the tests.
    parallel_tables = False

    @property
    def path(self) -> Path:
        p = self._parts.path
        return Path(unquote(p[1:] if p.startswith("//") else p))

    def _connect(self) -> sqlite3.Connection:
        if not self.create and not self.path.exists():
            raise SourceError(
                f"source database {self.path} does not exist: load it first with `dwh source load` "
                "(or run `dwh demo`), or set DWH_SOURCE_URL"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"source database {self.path}: {_reason(exc)}") from None
        from ..verify.checksum import register_sqlite

        register_sqlite(conn)  # md5() and hex_int() for `dwh verify` (SQLite has no MD5)
        return conn

    def execute(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """As `SourceEngine.execute`; SourceError names the file when SQLite cannot read it."""
        try:
            return super().execute(sql, params)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)):
                raise
            raise SourceError(f"source database {self.path}: {_reason(exc)}") from None

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

    def unreadable_condition(self, table: Table, column: str) -> str | None:
        """SQLite keeps any value in any column: text in a TIMESTAMP that is not a date, text in
        a number column."""
        q, kind = self.quote(column), table.column(column).type.kind
        if kind == "timestamp":
            date = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"
            return f"{q} IS NOT NULL AND (typeof({q}) <> 'text' OR {q} NOT GLOB '{date}' OR datetime({q}) IS NULL)"
        if kind in ("integer", "bigint"):
            return f"typeof({q}) NOT IN ('integer', 'null')"
        if kind == "double":
            return f"typeof({q}) NOT IN ('real', 'integer', 'null')"
        return None

    def estimate_rows(self, table: Table) -> int:
        low, high = self.execute(f"SELECT min(rowid), max(rowid) FROM {self.quote(table.name)}")[0]
        return 0 if low is None else high - low + 1

    def split_points(self, table: Table, parts: int) -> list[object]:
        return ranges.rowid_cuts(self, table, parts)

    def table_exists(self, table: Table) -> bool:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
        return self.execute(sql, (table.name,))[0][0] > 0


def _reason(exc: sqlite3.DatabaseError) -> str:
    """SQLite's error, with what a corrupted or foreign file means for the user."""
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return f"{text} (a corrupted or foreign file: restore it, or load the source again with dwh source load)"
    return text
