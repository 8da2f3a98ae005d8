"""What every source engine offers the hourly extract: a connection, the clock, quoting, and
the pieces of a SELECT that differ between engines. The one-time bootstrap (DDL, triggers,
bulk load) lives in `loaders/sources/bootstrap/`; key-range planning in `ranges.py`.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import SplitResult, unquote, urlsplit

from ..dbapi import fetch, transaction
from ..declarations import Table

log = logging.getLogger("loaders.sources")

SourceEngineName = Literal["sqlite", "mysql"]
"""The source engines: the embedded SQLite file, or MySQL/MariaDB (Amazon RDS)."""


class SourceError(RuntimeError):
    """The source database or a source file cannot be used; the message says which and why."""


def scrub(message: str, url: str) -> str:
    """`message` without the password of `url` (drivers echo connection strings in errors)."""
    password = urlsplit(url).password
    if password:
        message = message.replace(password, "***").replace(unquote(password), "***")
    return message


class SourceEngine:
    """A connection to the source database named by a URL. Subclasses: one per engine."""

    name: ClassVar[SourceEngineName]
    schemes: ClassVar[tuple[str, ...]]
    paramstyle: ClassVar[str]  # the DB-API placeholder: "?" or "%s"
    _quote_char: ClassVar[str]
    # `dwh extract` may read several tables at once (loaders/extract/parallel.py)
    parallel_tables: ClassVar[bool] = True

    def __init__(self, url: str, parts: SplitResult, create: bool = False):
        self.url = url
        self._parts = parts
        self.create = create  # may the connection create the database (an embedded file)?
        self._conn: Any = self._connect()

    # -- connection -------------------------------------------------------------------------
    def _connect(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SourceEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """Run one statement (logged at debug level) and return its rows."""
        return fetch(self._conn, sql, params, log)

    def transaction(self) -> AbstractContextManager[None]:
        return transaction(self.execute)

    def connectorx_url(self) -> str:
        """The URL ConnectorX reads with (it carries the password: never print it)."""
        raise NotImplementedError

    # -- quoting ----------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        q = self._quote_char
        return q + name.replace(q, q + q) + q

    def literal(self, value: object) -> str:
        """A key value read back from this database, as a literal for its own SQL."""
        if isinstance(value, bool) or value is None:
            raise ValueError(f"unsupported key value {value!r}")
        if isinstance(value, (int, float)):
            return repr(value)
        return "'" + str(value).replace("'", "''") + "'"

    # -- clock and cursors ------------------------------------------------------------------
    def now(self) -> datetime:
        """The database's own clock: the cursor columns are written with it."""
        raise NotImplementedError

    def timestamp_literal(self, value: datetime) -> str:
        """A cursor bound formatted the way the engine stores and compares timestamps."""
        return "'" + value.strftime("%Y-%m-%d %H:%M:%S.%f") + "'"

    # -- reading tables ---------------------------------------------------------------------
    def page_key(self, table: Table) -> list[tuple[str, str]]:
        """(expression, result column) pairs a historical extract pages on, in storage order:
        paging on that order reads the table sequentially, each page continuing where the last
        one stopped."""
        return [(self.quote(k), k) for k in table.primary_key]

    def page_index_hint(self) -> str:
        """Table hint for the page queries (empty: none)."""
        return ""

    def select_expression(self, table: Table, column: str, zero_dates: bool = True) -> str:
        """How a column is read for extraction (see `MySQLSource`: zero dates)."""
        return self.quote(column)

    def unreadable_condition(self, table: Table, column: str) -> str | None:
        """A SQL condition true for a value of `column` that the extract's driver cannot read
        as its declared type (None: every stored value reads). Used after a read failed, to
        name the row (loaders/extract/diagnose.py)."""
        return None

    def has_zero_date_guard(self, table: Table) -> bool:
        """Whether reading this table with `zero_dates=True` differs from reading it plainly."""
        return False

    def estimate_rows(self, table: Table) -> int:
        """A cheap row estimate (statistics, not a count)."""
        raise NotImplementedError

    def split_points(self, table: Table, parts: int) -> list[object]:
        """Values of the first page-key column that cut the table into `parts` ranges of
        similar size (loaders/sources/ranges.py)."""
        raise NotImplementedError

    def table_exists(self, table: Table) -> bool:
        raise NotImplementedError

    def row_count(self, table: Table) -> int:
        return int(self.execute(f"SELECT count(*) FROM {self.quote(table.name)}")[0][0])
