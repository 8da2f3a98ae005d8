"""After a driver failed to read a table: which row, column and value it could not read.

ConnectorX names neither the column nor the row ("Conversion error from type Text at index:
1"), and on MySQL a date with a zero month or day makes its Rust code panic. The source engine
knows, per declared column, a SQL condition that is true exactly for such values
(`SourceEngine.unreadable_condition`); one query per column over the same cursor window finds
the first one. Also, while the driver runs, Rust's panic hook writes its message (and, with
RUST_BACKTRACE set, a backtrace) straight to file descriptor 2: `panics_silenced` keeps that
off the terminal, logging it at debug level (`--debug` shows it).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from ..declarations import Table
from ..sources import SourceEngine

log = logging.getLogger("loaders.extract")

_LOG_RECORD = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: |^\{\"")
"""A record of loaders/console.py's log format (text or JSON)."""
_NATIVE = re.compile(r"^thread '.*' (\(\d+\) )?panicked at |^stack backtrace:|^\s+\d+: |^note: |^cx ")
"""Where native output starts: a Rust panic, a backtrace, ConnectorX's own error report."""
_capture_lock = threading.Lock()


def find_unreadable(
    engine: SourceEngine, table: Table, lower: datetime | None, upper: datetime
) -> tuple[str, str, str] | None:
    """(column, key, value as text) of the first row in the extract's window whose value the
    driver cannot read, or None when every column reads (the failure was something else)."""
    q = engine.quote
    cursor = q(table.cursor)
    window = [f"{cursor} < {engine.timestamp_literal(upper)}"]
    if lower is not None:
        window.append(f"{cursor} >= {engine.timestamp_literal(lower)}")
    keys = [q(k) for k in table.primary_key]
    for c in table.columns:
        condition = engine.unreadable_condition(table, c.name)
        if condition is None:
            continue
        text = f"CAST({q(c.name)} AS CHAR)" if engine.name == "mysql" else q(c.name)
        sql = (
            f"SELECT {', '.join(keys)}, {text} FROM {q(table.name)} "
            f"WHERE {' AND '.join(window)} AND {condition} LIMIT 1"
        )
        try:
            rows = engine.execute(sql)
        except Exception as exc:  # the diagnosis must not hide the failure it explains
            log.debug("diagnosis of %s.%s failed: %s", table.name, c.name, exc)
            continue
        if rows:
            *key, value = rows[0]
            shown = ", ".join(f"{k}={v!r}" for k, v in zip(table.primary_key, key, strict=True))
            return c.name, shown, value
    return None


@contextmanager
def panics_silenced() -> Iterator[None]:
    """Send what native code writes to stderr (fd 2) to a temporary file while the block runs;
    then log Rust panic output at debug level and write everything else back to stderr.

    Python's own stderr writes (log lines, progress bars) are kept apart on a duplicate of the
    real stderr for the duration. Nested or concurrent uses capture once.
    """
    if not _capture_lock.acquire(blocking=False):
        yield
        return
    try:
        try:
            fd = sys.__stderr__.fileno() if sys.__stderr__ else 2
            saved = os.dup(fd)
        except (OSError, ValueError):  # no real stderr (an embedded interpreter): nothing to keep apart
            yield
            return
        with tempfile.TemporaryFile() as sink:
            python_stderr = sys.stderr
            try:
                sys.stderr.flush()
            except Exception:
                pass
            os.dup2(sink.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
                os.close(saved)
                sys.stderr = python_stderr
                sink.seek(0)
                _replay(sink.read().decode("utf-8", "replace"))
    finally:
        _capture_lock.release()


def _replay(text: str) -> None:
    """Native output (a Rust panic, a driver's error report with its backtrace) to the debug
    log; Python's own log records (and their continuation lines) back to stderr."""
    if not text:
        return
    kept: list[str] = []
    native: list[str] = []
    python = False
    for line in text.splitlines():
        if _LOG_RECORD.match(line):
            python = True
        elif _NATIVE.match(line):
            python = False
        if not line.strip():
            continue  # the panic hook writes empty lines around its block
        (kept if python else native).append(line)
    if native:
        log.debug("driver output:\n%s", "\n".join(native))
    if kept:
        sys.stderr.write("\n".join(kept) + "\n")
        sys.stderr.flush()
