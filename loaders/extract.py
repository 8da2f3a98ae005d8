"""Extract: one run of one table writes one batch to the object store (contracts 2 and 3).

A batch is a folder `<table>/<mode>/batch=<id>/` holding Parquet parts, a Redshift COPY
manifest and, written last, `_manifest.json` listing every part with its rows, bytes and
SHA-256, the column schema, the cursor range and the mode. A folder without `_manifest.json`
is not a batch: the loader never sees it.

Incremental ("current") runs read `cursor >= watermark - lookback AND cursor < upper`, where
`upper` is the source database's clock read once at the start of the run. The watermark is
stored at `<table>/_state.json` and advances to `upper` only after the manifest is written.
NULL cursors: a row whose cursor is NULL is taken by historical extracts only (the declared
cursors are NOT NULL and kept by the database, so this only matters for hand-made tables).

Rows come from the database as Arrow record batches (ConnectorX) and go into Parquet writers.
A historical extract reads `extract_streams` key ranges in parallel, one thread and one
connection each, page by page (keyset pagination in storage order; the first page of a range
has 16,384 rows, the next ones double up to `page_rows`). Each page is read whole: ConnectorX
then works without Python's GIL, while its streaming reader holds the GIL as it waits for the
next batch and stalls the other threads. The threads hand batches to the writer through a
queue of `2 x extract_streams` batches, so memory holds at most one page per range plus that
queue, whatever the table size. An incremental extract is one query in cursor order, streamed.

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
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .config import Settings
from .source import SourceDB, SourceError, scrub
from .store import HashingWriter, ObjectStore
from .tables import Table

log = logging.getLogger(__name__)
Mode = Literal["historical", "current"]
MODES: tuple[str, ...] = ("historical", "current")
MANIFEST = "_manifest.json"
COPY_MANIFEST = "_copy.manifest"
MANIFEST_VERSION = 1


class ExtractError(RuntimeError):
    """An extract cannot run; the message names the table and the reason."""


@dataclass(frozen=True)
class Part:
    path: str  # relative to the store root
    rows: int
    bytes: int
    sha256: str


@dataclass
class BatchReport:
    table: str
    mode: str
    batch_id: str | None
    rows: int = 0
    bytes: int = 0
    parts: list[Part] = field(default_factory=list)
    lower: datetime | None = None
    upper: datetime | None = None
    seconds: float = 0.0
    manifest: str | None = None


def batch_dir(table: str, mode: str, batch_id: str) -> str:
    return f"{table}/{mode}/batch={batch_id}"


def state_path(table: str) -> str:
    return f"{table}/_state.json"


def new_batch_id() -> str:
    """Sortable by time, unique across concurrent runs."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def read_watermark(store: ObjectStore, table: Table) -> datetime | None:
    if not store.exists(state_path(table.name)):
        return None
    state = store.read_json(state_path(table.name))
    return datetime.fromisoformat(state["watermark"])


def _write_watermark(store: ObjectStore, table: Table, upper: datetime, batch_id: str | None) -> None:
    store.write_json(
        state_path(table.name),
        {"table": table.name, "watermark": upper.isoformat(), "last_batch_id": batch_id},
    )


def build_query(db: SourceDB, table: Table, lower: datetime | None, upper: datetime,
                zero_dates: bool = True, hint: str = "") -> str:
    """The SELECT of an extract: historical (every row before `upper`) or current (the window).
    `zero_dates=False` selects the plain columns (see the module docstring); `hint` follows the
    table name."""
    cursor = db.quote(table.cursor)
    columns = ", ".join(db.select_expression(table, c, zero_dates) for c in table.column_names)
    sql = f"SELECT {columns} FROM {db.quote(table.name)}{' ' + hint if hint else ''} WHERE "
    if lower is None:
        return sql + f"({cursor} < {db.timestamp_literal(upper)} OR {cursor} IS NULL)"
    return (sql + f"{cursor} >= {db.timestamp_literal(lower)} AND {cursor} < {db.timestamp_literal(upper)}"
            f" ORDER BY {cursor}")


@dataclass
class _KeyRange:
    """One of the parallel key ranges of a historical extract, read page after page."""

    start: object | None
    end: object | None
    after: tuple | None = None  # the page key of the last row read
    done: bool = False


def page_query(db: SourceDB, table: Table, upper: datetime, key_range: _KeyRange, page_rows: int,
               zero_dates: bool = True) -> str:
    """The next page of one key range: keyset pagination in storage order, so each page is a
    short index range scan that starts where the previous one stopped."""
    keys = db.page_key(table)
    extra = [f"{expr} AS {db.quote(alias)}" for expr, alias in keys if alias not in table.column_names]
    sql = build_query(db, table, None, upper, zero_dates, db.page_index_hint())
    if extra:
        sql = sql.replace(" FROM ", ", " + ", ".join(extra) + " FROM ", 1)
    first = keys[0][0]
    if key_range.start is not None:
        sql += f" AND {first} >= {db.literal(key_range.start)}"
    if key_range.end is not None:
        sql += f" AND {first} < {db.literal(key_range.end)}"
    if key_range.after is not None:
        # (k1, k2) > (a, b), spelled out: MariaDB does not use an index for row comparisons
        ors = []
        for i in range(len(keys)):
            equal = [f"{keys[j][0]} = {db.literal(key_range.after[j])}" for j in range(i)]
            ors.append("(" + " AND ".join([*equal, f"{keys[i][0]} > {db.literal(key_range.after[i])}"]) + ")")
        sql += " AND (" + " OR ".join(ors) + ")"
    return sql + f" ORDER BY {', '.join(e for e, _ in keys)} LIMIT {int(page_rows)}"


def conform(batch: pa.RecordBatch, schema: pa.Schema, table: Table) -> pa.RecordBatch:
    """Cast a batch as the driver typed it to the declared schema, refusing any data loss."""
    arrays = []
    for target in schema:
        column = batch.column(target.name)
        try:
            if pa.types.is_decimal(target.type) and pa.types.is_floating(column.type):
                column = pc.round(column, ndigits=target.type.scale)  # SQLite keeps money as REAL
            if not column.type.equals(target.type):
                column = column.cast(target.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ExtractError(
                f"table {table.name!r}, column {target.name!r}: cannot store {column.type} values "
                f"as {target.type}: {exc}"
            ) from None
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _column_codecs(table: Table, codec: str) -> str | dict[str, str]:
    """The Parquet codec of each column: `codec`, except that snappy leaves CHAR(32+) columns
    (hashes and UUIDs, like Olist's hex ids) uncompressed. Snappy has no entropy coder: on
    random hex it saved 20% of the bytes for more than half of the Parquet writer's CPU time.
    zstd halves them, so with zstd every column is compressed."""
    if codec != "snappy":
        return codec
    return {c.name: "none" if c.type.kind == "char" and (c.type.length or 0) >= 32 else codec
            for c in table.columns}


class _PartWriter:
    """Writes consecutive Parquet parts of at most `part_rows` rows each."""

    def __init__(self, store: ObjectStore, folder: str, table: Table, settings: Settings):
        self.store, self.folder, self.settings = store, folder, settings
        self.schema = table.arrow_schema()
        # Dictionary encoding pays for short codes (statuses, states, zips); for unique ids and
        # free text it costs time and saves nothing.
        self.dictionary_columns = [
            c.name for c in table.columns
            if c.type.kind in ("char", "varchar") and (c.type.length or 0) <= 16
        ]
        self.compression = _column_codecs(table, settings.parquet_compression)
        self.parts: list[Part] = []
        self._sink: HashingWriter | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            if self._writer is None:
                self._open()
            room = self.settings.part_rows - self._rows
            head, batch = batch.slice(0, room), batch.slice(room)
            self._writer.write_batch(head)  # type: ignore[union-attr]
            self._rows += head.num_rows
            if self._rows >= self.settings.part_rows:
                self._close()

    def _open(self) -> None:
        path = f"{self.folder}/part-{len(self.parts):05d}.parquet"
        self._path = path
        self._sink = self.store.open_part(path)
        self._writer = pq.ParquetWriter(
            self._sink, self.schema, compression=self.compression, write_statistics=True,
            store_schema=False, use_dictionary=self.dictionary_columns,
        )

    def _close(self) -> None:
        assert self._writer is not None and self._sink is not None
        self._writer.close()
        self._sink.close()
        self.parts.append(Part(self._path, self._rows, self._sink.bytes, self._sink.sha256))
        self._writer, self._sink, self._rows = None, None, 0

    def finish(self) -> list[Part]:
        if self._writer is not None:
            self._close()
        return self.parts

    def abort(self) -> None:
        if self._sink is not None:
            self._sink.abort()
        self._writer, self._sink = None, None


def _read(db: SourceDB, table: Table, lower: datetime | None, upper: datetime,
          settings: Settings) -> Iterator[pa.RecordBatch]:
    """The rows of one extract as record batches, conformed to the declared schema.

    An incremental extract is one query in cursor order. A historical extract cuts the table
    into `extract_streams` key ranges, each read page by page by its own thread over its own
    connection, so the database works on every range at once while this thread writes Parquet.
    The threads hand batches over through a bounded queue: memory holds at most one page per
    range plus the queue, whatever the table size.
    """
    schema = table.arrow_schema()
    if lower is not None:
        for raw in _stream(db, table, build_query(db, table, lower, upper), settings.batch_rows):
            yield conform(raw, schema, table)
        return
    edges = [None, *db.split_points(table, settings.extract_streams), None]
    ranges = [_KeyRange(a, b) for a, b in zip(edges, edges[1:])]
    _tune_malloc()
    handoff: queue.Queue = queue.Queue(maxsize=2 * len(ranges))
    stop = threading.Event()
    zero_dates = threading.Event()  # set by the first range that meets a zero date, for all
    threads = [
        threading.Thread(target=_read_range,
                         args=(db, table, upper, r, settings, handoff, stop, zero_dates),
                         name=f"extract-{table.name}-{i}", daemon=True)
        for i, r in enumerate(ranges)
    ]
    for t in threads:
        t.start()
    running = len(threads)
    try:
        while running:
            item = handoff.get()
            if item is _RANGE_DONE:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
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


_RANGE_DONE = object()
FIRST_PAGE_ROWS = 16_384  # the first page of a range; pages then double up to page_rows
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc mallopt parameters


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


def _read_range(db: SourceDB, table: Table, upper: datetime, key_range: _KeyRange, settings: Settings,
                handoff: queue.Queue, stop: threading.Event, zero_dates: threading.Event) -> None:
    """Read one key range page by page into `handoff`; end with _RANGE_DONE or the exception."""

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    try:
        keys = db.page_key(table)
        schema = table.arrow_schema()
        page_rows = min(FIRST_PAGE_ROWS, settings.page_rows)
        while not key_range.done:
            mapped = zero_dates.is_set()  # plain columns until a range meets a zero date
            query = page_query(db, table, upper, key_range, page_rows, mapped)
            rows = 0
            try:
                for raw in _read_page(db, table, query, settings.batch_rows):
                    rows += raw.num_rows
                    last = raw.num_rows - 1
                    key_range.after = tuple(raw.column(alias)[last].as_py() for _, alias in keys)
                    if not put(conform(raw, schema, table)):
                        return
            except SourceError as exc:
                if mapped or not db.has_zero_date_guard(table):
                    raise
                if not zero_dates.is_set():
                    zero_dates.set()
                    log.info("table %s: the plain read stopped (%s); reading on from the last key "
                             "with zero dates mapped to NULL", table.name, exc)
                continue
            key_range.done = rows < page_rows
            page_rows = min(2 * page_rows, settings.page_rows)
        put(_RANGE_DONE)
    except BaseException as exc:  # handed to the writer thread, which raises it
        put(exc)


def _read_page(db: SourceDB, table: Table, query: str, batch_rows: int) -> list[pa.RecordBatch]:
    """One page, read whole. ConnectorX releases the GIL for the whole read here (its streaming
    reader holds it while it waits for the next batch, which stalls every other thread)."""
    import connectorx as cx

    log.debug("extract SQL for %s: %s", table.name, query)
    with _driver_errors(db, table):
        page = cx.read_sql(db.connectorx_url(), query, return_type="arrow")
    return [b for b in page.to_batches(max_chunksize=batch_rows) if b.num_rows]


def _stream(db: SourceDB, table: Table, query: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The record batches of one query as the driver streams them (incremental extracts)."""
    import connectorx as cx

    log.debug("extract SQL for %s: %s", table.name, query)
    with _driver_errors(db, table):
        reader = cx.read_sql(db.connectorx_url(), query, return_type="arrow_stream", batch_size=batch_rows)
    while True:
        with _driver_errors(db, table):
            try:
                raw = reader.read_next_batch()
            except StopIteration:
                return
        yield raw


@contextlib.contextmanager
def _driver_errors(db: SourceDB, table: Table) -> Iterator[None]:
    """Turn what the driver raises into one SourceError naming the table, without the URL's
    credentials. ConnectorX raises Rust panics (a zero date, a lost connection) as
    BaseException."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        raise SourceError(f"reading table {table.name!r} failed: {scrub(str(exc), db.url)}") from None


def extract_table(
    settings: Settings,
    db: SourceDB,
    store: ObjectStore,
    table: Table,
    mode: Mode,
    progress: Callable[[str, int], None] | None = None,
) -> BatchReport:
    """Extract one table as one batch; return what was written (batch_id None if no rows)."""
    if mode not in MODES:
        raise ExtractError(f"unknown mode {mode!r}: use historical or current")
    started = time.perf_counter()
    upper = db.now()
    lower = None
    if mode == "current":
        watermark = read_watermark(store, table)
        if watermark is None:
            raise ExtractError(
                f"table {table.name!r} has no watermark in {store.url}: run a historical extract first"
            )
        lower = watermark - timedelta(seconds=settings.lookback_seconds)
    batch_id = new_batch_id()
    folder = batch_dir(table.name, mode, batch_id)
    writer = _PartWriter(store, folder, table, settings)
    rows = 0
    max_cursor = None
    try:
        for batch in _read(db, table, lower, upper, settings):
            batch_max = pc.max(batch.column(table.cursor)).as_py()
            if batch_max is not None and (max_cursor is None or batch_max > max_cursor):
                max_cursor = batch_max
            writer.write(batch)
            rows += batch.num_rows
            if progress:
                progress(table.name, rows)
        parts = writer.finish()
    except BaseException:
        writer.abort()
        _discard_batch(store, folder)
        raise
    report = BatchReport(table.name, mode, None, lower=lower, upper=upper)
    if rows:
        manifest = {
            "version": MANIFEST_VERSION,
            "table": table.name,
            "batch_id": batch_id,
            "mode": mode,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "source_dialect": db.dialect,
            "format": "parquet",
            "compression": settings.parquet_compression,
            "cursor": {
                "column": table.cursor,
                "lower": lower.isoformat() if lower else None,
                "upper": upper.isoformat(),
                "max": max_cursor.isoformat() if max_cursor else None,
            },
            "primary_key": list(table.primary_key),
            "columns": [
                {"name": c.name, "type": _logical(c.type), "arrow": str(c.type.arrow())}
                for c in table.columns
            ],
            "row_count": rows,
            "parts": [{**asdict(p), "path": p.path.rsplit("/", 1)[1]} for p in parts],
        }
        _write_manifest(store, folder, manifest, parts)
        report.batch_id, report.rows, report.parts = batch_id, rows, parts
        report.bytes = sum(p.bytes for p in parts)
        report.manifest = store.uri(f"{folder}/{MANIFEST}")
    _write_watermark(store, table, upper, report.batch_id)
    report.seconds = time.perf_counter() - started
    log.info("extracted %s (%s): %d rows in %d parts, %.1fs", table.name, mode, rows, len(report.parts), report.seconds)
    return report


def _logical(t) -> str:
    if t.kind == "decimal":
        return f"decimal({t.length},{t.scale})"
    return f"{t.kind}({t.length})" if t.length else t.kind


def _write_manifest(store: ObjectStore, folder: str, manifest: dict, parts: list[Part]) -> None:
    """Redshift's COPY manifest first, then ours: its presence publishes the batch."""
    store.write_json(
        f"{folder}/{COPY_MANIFEST}",
        {"entries": [
            {"url": store.uri(p.path), "mandatory": True, "meta": {"content_length": p.bytes}}
            for p in parts
        ]},
    )
    store.write_json(f"{folder}/{MANIFEST}", manifest)


def _discard_batch(store: ObjectStore, folder: str) -> None:
    try:
        store.delete(folder)
    except Exception:  # the batch has no manifest: leftovers are invisible anyway
        log.warning("could not remove the unfinished batch folder %s", store.uri(folder))
