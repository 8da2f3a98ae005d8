"""MySQL / MariaDB (Amazon RDS): the production source."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote

from ..config import redact_url
from ..declarations import Table
from . import ranges
from .base import SourceEngine, SourceError, scrub

ZERO_DATE = "0000-00-00 00:00:00"
"""MySQL's zero date; with a zero month or day it is read as NULL (`select_expression`)."""


class MySQLSource(SourceEngine):
    name = "mysql"
    schemes = ("mysql", "mariadb")
    paramstyle = "%s"
    _quote_char = "`"

    def connect_kwargs(self) -> dict[str, Any]:
        """PyMySQL's connect() arguments for this URL (host, port, user, password, database;
        utf8mb4, autocommit, a 10 s connect timeout): every connection to the source uses them."""
        p = self._parts
        return {
            "host": p.hostname or "127.0.0.1",
            "port": p.port or 3306,
            "user": unquote(p.username or ""),
            "password": unquote(p.password or ""),
            "database": unquote(p.path.lstrip("/")) or None,
            "charset": "utf8mb4",
            "autocommit": True,
            "connect_timeout": 10,
        }

    def _connect(self) -> Any:
        import pymysql

        try:
            return pymysql.connect(**self.connect_kwargs(), local_infile=True)
        except pymysql.MySQLError as exc:
            raise SourceError(
                f"cannot connect to the source database {redact_url(self.url)}: {scrub(str(exc), self.url)}"
            ) from None

    def execute(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """As `SourceEngine.execute`; SourceError names the database for the server's errors
        (a missing table, a lost connection), without the password."""
        import pymysql

        try:
            return super().execute(sql, params)
        except pymysql.MySQLError as exc:
            reason = scrub(str(exc.args[1] if len(exc.args) > 1 else exc), self.url)
            raise SourceError(f"source database {redact_url(self.url)}: {reason}") from None

    def connectorx_url(self) -> str:
        return self._parts._replace(scheme="mysql").geturl()

    def literal(self, value: object) -> str:
        text = super().literal(value)
        return text.replace("\\", "\\\\") if text.startswith("'") else text

    def now(self) -> datetime:
        value = self.execute("SELECT CURRENT_TIMESTAMP(6)")[0][0]
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))

    def page_index_hint(self) -> str:
        # Walk the primary key: without it MariaDB may read the first page (no key bound yet)
        # through the cursor index and sort half the table.
        return "FORCE INDEX (PRIMARY)"

    def select_expression(self, table: Table, column: str, zero_dates: bool = True) -> str:
        """With `zero_dates`, MySQL zero dates (`0000-00-00 00:00:00`) and dates with a zero
        month or day (`2017-10-00 19:55:00`, which a lax sql_mode stores) become NULL on the
        server; that costs the server about a third more CPU per scanned row, so the bulk read
        tries the plain column first (loaders/extract/readers.py). The cursor column is kept
        by the database and never zero."""
        q = self.quote(column)
        if zero_dates and column != table.cursor and table.column(column).type.kind == "timestamp":
            return f"IF(MONTH({q}) = 0 OR DAYOFMONTH({q}) = 0, NULL, {q}) AS {q}"
        return q

    def unreadable_condition(self, table: Table, column: str) -> str | None:
        """A zero date or a zero month or day (read as NULL: see `select_expression`)."""
        if column == table.cursor or table.column(column).type.kind != "timestamp":
            return None
        q = self.quote(column)
        return f"(MONTH({q}) = 0 OR DAYOFMONTH({q}) = 0)"

    def has_zero_date_guard(self, table: Table) -> bool:
        return any(c.type.kind == "timestamp" and c.name != table.cursor for c in table.columns)

    def estimate_rows(self, table: Table) -> int:
        rows = self.execute(
            "SELECT table_rows FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
            (table.name,),
        )
        return int(rows[0][0] or 0) if rows else 0

    def split_points(self, table: Table, parts: int) -> list[object]:
        return ranges.key_cuts(self, table, parts)

    def table_exists(self, table: Table) -> bool:
        sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s"
        return self.execute(sql, (table.name,))[0][0] > 0
