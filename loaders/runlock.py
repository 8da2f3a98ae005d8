"""The run lock: one `dwh run`, `dwh load` or `dwh build` at a time per warehouse.

An hourly schedule overlaps itself when one run is slow. The second run waits for the lock up
to `DWH_LOCK_WAIT_SECONDS` (default 60), then skips with one line ("another run holds the
warehouse; skipped") and exit status 0: overlap is a normal, quiet event, not a failure. The lock
is released when its holder ends, also when it is killed, on every engine:

- DuckDB: an exclusive `flock` on `<warehouse file>.lock` (the kernel drops it with the process);
- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a connection of its own, held
  while the run lasts (the server drops it with the connection);
- Redshift (no advisory locks): `LOCK raw._run_lock` inside a transaction held open on a
  connection of its own, with `statement_timeout` as the wait; Redshift releases it when the
  transaction or the connection ends.

The load's own transaction still serializes each batch (loaders/load/loader.py): the run lock
only turns the overlap into a wait or a skip instead of a lock error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import Settings
from .warehouses.sql import quote

log = logging.getLogger("loaders.runlock")
SKIPPED = "another run holds the warehouse; skipped"
"""The one line a run prints when it gives up waiting for the lock."""
RUN_LOCK_TABLE = "_run_lock"
POLL_SECONDS = 0.2


def advisory_key(settings: Settings) -> int:
    """The PostgreSQL advisory lock key of a warehouse: a signed 64-bit number derived from the raw
    schema (advisory locks are per database already)."""
    digest = hashlib.sha256(f"dwh-run-lock:{settings.raw_schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def redshift_lock_statements(settings: Settings) -> list[str]:
    """What the Redshift lock sends, in order, on its own connection (autocommit off)."""
    table = f"{quote(settings.raw_schema)}.{quote(RUN_LOCK_TABLE)}"
    return [
        f"CREATE SCHEMA IF NOT EXISTS {quote(settings.raw_schema)}",
        f"CREATE TABLE IF NOT EXISTS {table} (holder VARCHAR(64))",
        "COMMIT",
        f"SET statement_timeout TO {max(1, settings.lock_wait_seconds) * 1000}",
        f"LOCK {table}",
        "SET statement_timeout TO 0",
    ]


@contextmanager
def run_lock(settings: Settings) -> Iterator[bool]:
    """Hold the warehouse's run lock while the block runs; yield False (and hold nothing) when
    another run still holds it after `settings.lock_wait_seconds`.

    Raises WarehouseError when the warehouse cannot be reached at all.
    """
    lockers = {"duckdb": _duckdb_lock, "postgres": _postgres_lock, "redshift": _redshift_lock}
    with lockers[settings.warehouse](settings) as held:
        yield held


@contextmanager
def _duckdb_lock(settings: Settings) -> Iterator[bool]:
    import fcntl

    path = Path(f"{settings.duckdb_path}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + settings.lock_wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _postgres_lock(settings: Settings) -> Iterator[bool]:
    from .warehouses.postgres import PostgresWarehouse

    wh = PostgresWarehouse(settings, store=None)  # type: ignore[arg-type]  # the lock needs no store
    wh.connect()
    try:
        key = advisory_key(settings)
        deadline = time.monotonic() + settings.lock_wait_seconds
        while not wh.execute(f"SELECT pg_try_advisory_lock({key})")[0][0]:
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(POLL_SECONDS)
        try:
            yield True
        finally:
            wh.execute(f"SELECT pg_advisory_unlock({key})")
    finally:
        wh.close()


@contextmanager
def _redshift_lock(settings: Settings) -> Iterator[bool]:
    from .warehouses.redshift import RedshiftWarehouse

    wh = RedshiftWarehouse(settings, store=None)  # type: ignore[arg-type]  # the lock needs no store
    wh.connect()
    conn: Any = wh.conn
    conn.autocommit = False
    try:
        *setup, timeout, lock, no_timeout = redshift_lock_statements(settings)
        for sql in [*setup, timeout]:
            wh.execute(sql)
        try:
            wh.execute(lock)
        except Exception as exc:  # statement_timeout: another run holds it
            if "timeout" not in str(exc).lower() and "cancel" not in str(exc).lower():
                raise
            conn.rollback()
            yield False
            return
        wh.execute(no_timeout)
        try:
            yield True
        finally:
            conn.rollback()  # ends the transaction: the lock goes with it
    finally:
        wh.close()
