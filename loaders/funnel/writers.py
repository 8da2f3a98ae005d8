"""Writing the lake's Parquet files: one per (year, month) of a source file, row groups encoded
on two threads (docs/architecture.md, contract 6)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from .. import layout
from ..config import Settings
from ..declarations import FunnelDeclaration
from ..store import HashingWriter, ObjectStore
from .months import YearMonth


class PartitionWriters:
    """One Parquet file per (year, month), fed from bounded per-partition buffers.

    A partition's buffer is written as one row group when it reaches `row_group_rows`; when all
    buffers together pass `max_buffered_rows`, the largest is written. Row groups are encoded on
    `threads` threads (pyarrow releases the GIL while it encodes), different files at the same
    time, one file's row groups in order; at most `threads` row groups are in flight. The
    buffers hold the file's own columns; the converter's columns (source_file, converted_at),
    the same for every row, are added when a row group is written.

    Each column's encoding is declared (meta.parquet in the funnel's sources YAML): product ids
    are dictionary-encoded (a few tens of thousands repeat: a file both smaller and faster to
    write than plain strings), with dictionary pages up to 8 MB so that a row group's distinct
    ids fit; past that Parquet falls back to plain encoding. User ids are not: most of a row
    group's users are distinct, and their dictionary cost more time than it saved space
    (measured: 40% slower for that column).
    """

    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        stem: str,
        settings: Settings,
        declaration: FunnelDeclaration,
        source: str,
        converted_at: datetime,
        row_group_rows: int = 250_000,
        max_buffered_rows: int = 1_000_000,
        threads: int = 2,
    ):
        self.store, self.prefix, self.stem, self.settings = store, prefix, stem, settings
        self.schema = declaration.arrow_schema()
        columns = declaration.lake_columns
        self.dictionary = [c.name for c in columns if c.dictionary]
        self.uncompressed = {c.name for c in columns if not c.compressed}
        self.statistics = [c.name for c in columns if c.statistics]
        self.constants = {  # the converter's columns, by declared name
            "source_file": pa.scalar(source, pa.string()),
            "converted_at": pa.scalar(converted_at, pa.timestamp("us")),
        }
        self.added = [self.constants[c.name] for c in columns if c.origin == "converter"]
        self.row_group_rows, self.max_buffered_rows = row_group_rows, max_buffered_rows
        self.buffers: dict[YearMonth, list[pa.Table]] = {}
        self.buffered: dict[YearMonth, int] = {}
        self.writers: dict[YearMonth, tuple[pq.ParquetWriter, HashingWriter, str]] = {}
        self.rows: dict[YearMonth, int] = {}
        self.bytes = 0
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="funnel-write")
        self._in_flight: dict[YearMonth, Future] = {}

    def add(self, parts: list[tuple[YearMonth, pa.Table]]) -> None:
        """Buffer a block's rows per month; write the buffers that are full."""
        for ym, part in parts:
            self.buffers.setdefault(ym, []).append(part)
            self.buffered[ym] = self.buffered.get(ym, 0) + part.num_rows
            if self.buffered[ym] >= self.row_group_rows:
                self._flush(ym)
        while sum(self.buffered.values()) > self.max_buffered_rows:
            self._flush(max(self.buffered, key=lambda ym: self.buffered[ym]))

    def _flush(self, ym: YearMonth) -> None:
        parts = self.buffers.pop(ym, [])
        self.buffered.pop(ym, None)
        if not parts:
            return
        if ym not in self.writers:
            path = layout.partition_file(self.prefix, ym[0], ym[1], self.stem)
            sink = self.store.open_part(path)
            codec = "NONE" if self.settings.parquet_compression == "none" else self.settings.parquet_compression
            compression = {name: "NONE" if name in self.uncompressed else codec for name in self.schema.names}
            writer = pq.ParquetWriter(
                sink,
                self.schema,
                compression=compression,
                use_dictionary=self.dictionary,
                dictionary_pagesize_limit=8 << 20,
                write_statistics=self.statistics,
            )
            self.writers[ym] = (writer, sink, path)
        self._wait(ym)  # this file's previous row group first
        while len(self._in_flight) >= self.threads:
            done, _ = wait(self._in_flight.values(), return_when=FIRST_COMPLETED)
            for key in [k for k, f in self._in_flight.items() if f in done]:
                self._wait(key)
        self.rows[ym] = self.rows.get(ym, 0) + sum(p.num_rows for p in parts)
        self._in_flight[ym] = self._pool.submit(self._write, self.writers[ym][0], parts)

    def _write(self, writer: pq.ParquetWriter, parts: list[pa.Table]) -> None:
        table = pa.concat_tables(parts)
        n = table.num_rows
        table = pa.table([*table.columns, *(pa.repeat(v, n) for v in self.added)], schema=self.schema)
        writer.write_table(table, row_group_size=n)  # one row group per flush

    def _wait(self, ym: YearMonth) -> None:
        future = self._in_flight.pop(ym, None)
        if future is not None:
            future.result()  # raises what the write raised

    def close(self) -> dict[YearMonth, str]:
        """Write what is buffered, then close the files (footer, then the sink: on a local
        folder an fsync each), on the writer threads too; {(year, month): temporary key}."""
        for ym in list(self.buffers):
            self._flush(ym)
        closing = [
            (ym, self._pool.submit(self._close_file, self._in_flight.pop(ym, None), writer, sink))
            for ym, (writer, sink, _) in self.writers.items()
        ]
        try:
            for _, future in closing:
                future.result()
        finally:
            self._pool.shutdown()
        for ym, _ in closing:
            self.bytes += self.writers[ym][1].bytes
        return {ym: path for ym, (_, _, path) in self.writers.items()}

    @staticmethod
    def _close_file(last_write: Future | None, writer: pq.ParquetWriter, sink: HashingWriter) -> None:
        if last_write is not None:
            last_write.result()
        writer.close()
        sink.close()

    def abort(self) -> None:
        """Stop writing and drop every file written so far (nothing half-written stays)."""
        for future in self._in_flight.values():
            future.cancel()
        self._pool.shutdown(wait=True)
        self._in_flight.clear()
        for writer, sink, _ in self.writers.values():
            try:
                writer.close()
            except Exception:
                pass
            sink.abort() if not sink.closed else None


_pool_lock = threading.Lock()
_pool_users = 0
_pool_previous: pa.MemoryPool | None = None


@contextmanager
def conversion_memory_pool() -> Iterator[None]:
    """Arrow's jemalloc pool as the default while files convert, where pyarrow has it.

    The converter allocates and frees about 100 MB of Arrow buffers per block; jemalloc keeps
    freed pages for reuse where mimalloc (pyarrow's default) hands them back to the system and
    faults them in again (a whole process on jemalloc converted 1 GB about 15% faster, with no
    more memory; from here the Parquet writer's own buffers stay on the C++ default pool, so
    this gets part of it). Each Arrow buffer frees into the pool that allocated it, so switching
    the default is safe; the previous one is restored when the last conversion in the process
    ends. ARROW_DEFAULT_MEMORY_POOL, when set, is left in charge.
    """
    global _pool_users, _pool_previous
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        yield
        return
    try:
        pool = pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowNotImplementedError):
        yield
        return
    with _pool_lock:
        if _pool_users == 0:
            _pool_previous = pa.default_memory_pool()
            pa.set_memory_pool(pool)
        _pool_users += 1
    try:
        yield
    finally:
        with _pool_lock:
            _pool_users -= 1
            if _pool_users == 0 and _pool_previous is not None:
                pa.set_memory_pool(_pool_previous)
                _pool_previous = None
