"""The two DB-API idioms the source and the warehouse share: run one statement, one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def fetch(conn: Any, sql: str, params: Sequence | None = None, log: logging.Logger | None = None) -> list[tuple]:
    """Execute one statement (logged at debug level first) and return its rows, if any."""
    if log is not None:
        log.debug("SQL: %s", sql)
    cur = conn.cursor()
    try:
        if not params:  # no parameters: no placeholder parsing (a literal % stays a %)
            cur.execute(sql)
        else:
            cur.execute(sql, params)
        return list(cur.fetchall()) if cur.description else []
    finally:
        cur.close()


@contextmanager
def transaction(execute: Callable[[str], object], rollback: Callable[[], None] | None = None) -> Iterator[None]:
    """BEGIN ... COMMIT, or ROLLBACK on any exception (including a KeyboardInterrupt)."""
    execute("BEGIN")
    try:
        yield
    except BaseException:
        (rollback or (lambda: execute("ROLLBACK")))()
        raise
    execute("COMMIT")
