"""Reading a table's rows from the source as Arrow record batches (ConnectorX).

A historical extract cuts the table into `extract_streams` key ranges, each read page by page
by its own thread over its own connection (keyset pagination in storage order; the first page
of a range has 16,384 rows, the next ones double up to `page_rows`). Each page is read whole:
ConnectorX then works without Python's GIL, while its streaming reader holds the GIL as it
waits for the next batch and stalls the other threads (BENCHMARKS.md, session 4). The threads
hand batches to the writer through a queue of `2 x extract_streams` batches, so memory holds at
most one page per range plus that queue, whatever the table size. An incremental extract is one
query in cursor order, streamed.

MySQL zero dates (`0000-00-00 00:00:00`) are stored as NULL. The incremental query maps them on
the server (`NULLIF`). The historical read, a full scan, first selects the plain columns, which
costs the server about a third less CPU; a range that meets a zero date (the driver refuses to
decode it) re-reads from its last key with the `NULLIF` query, so the rows are the same either
way.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import pyarrow as pa

from ..config import Settings
from ..declarations import Table
from ..runs import first_line
from ..sources import SourceEngine, SourceError, scrub
from .diagnose import find_unreadable
from .parts import conform
from .queries import KeyRange, build_query, page_query
from .values import refuse

log = logging.getLogger("loaders.extract")
FIRST_PAGE_ROWS = 16_384  # the first page of a range; pages then double up to page_rows
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc mallopt parameters
T = TypeVar("T")


def read_rows(
    engine: SourceEngine, table: Table, lower: datetime | None, upper: datetime, settings: Settings
) -> Iterator[pa.RecordBatch]:
    """The rows of one extract as record batches, conformed to the declared schema.

    `lower` None: historical (every row before `upper`, key ranges in parallel); else the
    cursor window [lower, upper). Raises SourceError (naming the table) for driver failures,
    and ExtractError naming table, column, key and value for a value the driver cannot read
    (loaders/extract/diagnose.py) or that does not fit its declared type (values.py). MySQL
    zero dates and dates with a zero month or day are read as NULL, with a warning naming the
    first such row.
    """
    yield from _diagnosed(
        engine, table, lower, upper, lambda zero_dates: _read_rows(engine, table, lower, upper, settings, zero_dates)
    )


def read_chunks(
    engine: SourceEngine, table: Table, upper: datetime, settings: Settings, ranges: list[KeyRange]
) -> Iterator[Chunk]:
    """A historical read of the given key ranges as Chunks (`read_ranges`), with the same
    diagnosis of unreadable values as `read_rows` (a resumable extract, loaders/extract/batch.py)."""
    yield from _diagnosed(
        engine, table, None, upper, lambda zero_dates: read_ranges(engine, table, upper, settings, ranges, zero_dates)
    )


def _diagnosed(
    engine: SourceEngine,
    table: Table,
    lower: datetime | None,
    upper: datetime,
    produce: Callable[[threading.Event], Iterator[T]],
) -> Iterator[T]:
    """What `produce` yields; a driver failure on a value it cannot read becomes ExtractError
    naming table, column, key and value, and a zero date read as NULL one warning."""
    zero_dates = threading.Event()  # set by the first range that meets a zero date, for all
    try:
        yield from produce(zero_dates)
    except SourceError as exc:
        if engine.has_zero_date_guard(table):  # MySQL maps what it cannot read: another failure
            raise
        found = find_unreadable(engine, table, lower, upper)
        if found is None:
            raise
        column, key, value = found
        kind = table.column(column).type.kind
        raise refuse(table, column, key, value, f"cannot be read as {kind} ({first_line(exc)})") from None
    # mapped: always in a current window (a short indexed range), in a historical read only
    # once a range met one (the query scans the table)
    if engine.has_zero_date_guard(table) and (lower is not None or zero_dates.is_set()):
        found = find_unreadable(engine, table, lower, upper)
        if found:
            column, key, value = found
            log.warning(
                "table %s, column %s, key (%s): %r is not a date: read as NULL (README: When data is bad)",
                table.name,
                column,
                key,
                value,
            )


def _read_rows(
    engine: SourceEngine,
    table: Table,
    lower: datetime | None,
    upper: datetime,
    settings: Settings,
    zero_dates: threading.Event,
) -> Iterator[pa.RecordBatch]:
    schema = table.arrow_schema()
    if lower is not None:
        for raw in _stream(engine, table, build_query(engine, table, lower, upper), settings.batch_rows):
            yield conform(raw, schema, table)
        return
    for chunk in read_ranges(engine, table, upper, settings, plan_ranges(engine, table, settings), zero_dates):
        if chunk.batch is not None:
            yield chunk.batch


def plan_ranges(engine: SourceEngine, table: Table, settings: Settings) -> list[KeyRange]:
    """The key ranges a historical extract reads in parallel (loaders/sources/ranges.py)."""
    edges = [None, *engine.split_points(table, settings.extract_streams), None]
    return [KeyRange(a, b) for a, b in zip(edges, edges[1:], strict=False)]


@dataclass
class Chunk:
    """What a historical read hands over: a batch of range `index` with the page key of each of
    its rows (`keys[i]` is the key column i), or, with `batch` None, the end of that range."""

    index: int
    batch: pa.RecordBatch | None
    keys: list[pa.Array] = field(default_factory=list)

    def key_at(self, row: int) -> tuple:
        """The page key of one row of the batch, as Python values."""
        return tuple(k[row].as_py() for k in self.keys)


def read_ranges(
    engine: SourceEngine,
    table: Table,
    upper: datetime,
    settings: Settings,
    ranges: list[KeyRange],
    zero_dates: threading.Event,
) -> Iterator[Chunk]:
    """Read every row before `upper` of the given key ranges, each on its own thread, starting
    after each range's `after` key (a range already `done` only reports its end). Each range's
    chunks come in key order; chunks of different ranges interleave. `zero_dates` is set once a
    range meets a zero date (then every range reads with them mapped). Raises like `read_rows`."""
    _tune_malloc()
    handoff: queue.Queue = queue.Queue(maxsize=2 * len(ranges))
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_read_range,
            args=(engine, table, upper, i, r, settings, handoff, stop, zero_dates),
            name=f"extract-{table.name}-{i}",
            daemon=True,
        )
        for i, r in enumerate(ranges)
    ]
    for t in threads:
        t.start()
    running = len(threads)
    try:
        while running:
            item = handoff.get()
            if isinstance(item, BaseException):
                raise item
            if item.batch is None:
                running -= 1
            yield item
    finally:
        stop.set()
        for t in threads:  # unblock a thread waiting on a full queue, then wait for it
            while t.is_alive():
                try:
                    handoff.get(timeout=0.05)
                except queue.Empty:
                    pass
            t.join()


@functools.cache
def _tune_malloc(arenas: int = 2, mmap_threshold: int = 256 * 1024) -> None:
    """Keep the extract's memory flat however long it runs (glibc only; elsewhere a no-op).

    Pages are allocated and freed by the driver's threads, a few MB at a time. By default
    glibc gives every thread its own arena (up to 8 per core) and, once a large buffer has
    been freed, raises its mmap threshold so that later ones come from those arenas, whose
    freed memory is kept: the peak then grew with the table (1M rows: +20%). A fixed
    threshold (256 KB, near glibc's own starting value) sends page buffers to mmap, which
    returns them to the system when freed, and at most `arenas` arenas serve the rest."""
    try:
        libc = ctypes.CDLL(None)  # the C library already loaded
        libc.mallopt(_M_ARENA_MAX, arenas)
        libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
    except (OSError, AttributeError):
        pass


def _read_range(
    engine: SourceEngine,
    table: Table,
    upper: datetime,
    index: int,
    key_range: KeyRange,
    settings: Settings,
    handoff: queue.Queue,
    stop: threading.Event,
    zero_dates: threading.Event,
) -> None:
    """Read one key range page by page into `handoff` as Chunks; end with the range's closing
    Chunk (no batch) or the exception."""

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    try:
        keys = engine.page_key(table)
        schema = table.arrow_schema()
        page_rows = min(FIRST_PAGE_ROWS, settings.page_rows)
        while not key_range.done:
            mapped = zero_dates.is_set()  # plain columns until a range meets a zero date
            query = page_query(engine, table, upper, key_range, page_rows, mapped)
            rows = 0
            try:
                for raw in _read_page(engine, table, query, settings.batch_rows):
                    rows += raw.num_rows
                    last = raw.num_rows - 1
                    key_range.after = tuple(raw.column(alias)[last].as_py() for _, alias in keys)
                    key_columns = [raw.column(alias) for _, alias in keys]
                    if not put(Chunk(index, conform(raw, schema, table), key_columns)):
                        return
            except SourceError as exc:
                if mapped or not engine.has_zero_date_guard(table):
                    raise
                if not zero_dates.is_set():
                    zero_dates.set()
                    log.info(
                        "table %s: the plain read stopped (%s); reading on from the last key "
                        "with zero dates mapped to NULL",
                        table.name,
                        exc,
                    )
                continue
            key_range.done = rows < page_rows
            page_rows = min(2 * page_rows, settings.page_rows)
        put(Chunk(index, None))
    except BaseException as exc:  # handed to the writer thread, which raises it
        put(exc)


def _read_page(engine: SourceEngine, table: Table, query: str, batch_rows: int) -> list[pa.RecordBatch]:
    """One page, read whole. ConnectorX releases the GIL for the whole read here (its streaming
    reader holds it while it waits for the next batch, which stalls every other thread)."""
    import connectorx as cx

    log.debug("extract SQL for %s: %s", table.name, query)
    with _driver_errors(engine, table):
        page = cx.read_sql(engine.connectorx_url(), query, return_type="arrow")
    return [b for b in page.to_batches(max_chunksize=batch_rows) if b.num_rows]


def _stream(engine: SourceEngine, table: Table, query: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The record batches of one query as the driver streams them (incremental extracts)."""
    import connectorx as cx

    log.debug("extract SQL for %s: %s", table.name, query)
    with _driver_errors(engine, table):
        reader = cx.read_sql(engine.connectorx_url(), query, return_type="arrow_stream", batch_size=batch_rows)
    while True:
        with _driver_errors(engine, table):
            try:
                raw = reader.read_next_batch()
            except StopIteration:
                return
        yield raw


@contextlib.contextmanager
def _driver_errors(engine: SourceEngine, table: Table) -> Iterator[None]:
    """Turn what the driver raises into one SourceError naming the table, without the URL's
    credentials. ConnectorX raises Rust panics (a zero date, a lost connection) as
    BaseException."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        raise SourceError(f"reading table {table.name!r} failed: {scrub(str(exc), engine.url)}") from None
