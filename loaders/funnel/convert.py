"""The funnel lake: landing CSV files to year/month Parquet (docs/architecture.md, contract 6).

A landing file `landing/funnel/<name>.csv` converts to one Parquet file per (year, month) of
its events, `lake/funnel_events/year=<y>/month=<m>/<stem>.parquet`, named after the source, so
converting the same file again replaces its own output and never duplicates it, while two
files covering the same months both stay. The new files are written under a temporary prefix
first and moved into place only when the whole file converted and the reject ratio is
acceptable: a failed run leaves the lake as it was.

The file is read in blocks of whole lines; each block is parsed by pyarrow's CSV reader,
validated with vectorised kernels (the timestamp with the 12-hour pattern `%m/%d/%Y %I:%M %p`:
parsing it as a 24-hour clock shifts every afternoon event by 12 hours) and split by month on
two parsing threads, while the calling thread buffers the blocks' rows per month, in file
order, and two writer threads encode full buffers into Parquet row groups: parsing and
encoding take about the same time, and every stage can use either core (bench/funnel.py
measures it). Rows that fail (wrong column count, invalid UTF-8, bad timestamp, unknown event
type, empty user or product) go to `rejects/funnel/<stem>.csv` with their line number and
reason. Memory is bounded by the block size, the four blocks between reading and buffering,
the partition buffers and the two row groups being encoded, whatever the file size.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .. import layout
from ..config import Settings
from ..store import HashingWriter, ObjectStore, StoreError

log = logging.getLogger("loaders.funnel")
FUNNEL_HEADER = ("session_id", "event_timestamp", "event_type", "userid", "product_id", "category_id")
EVENT_TYPES = ("view", "add_to_cart", "remove_from_cart", "purchase")
TIMESTAMP_FORMAT = "%m/%d/%Y %I:%M %p"
SCHEMA = pa.schema(
    [
        ("session_id", pa.string()),
        ("event_timestamp", pa.timestamp("us")),
        ("event_type", pa.string()),
        ("userid", pa.string()),
        ("product_id", pa.string()),
        ("category_id", pa.string()),
        ("source_file", pa.string()),
        ("converted_at", pa.timestamp("us")),  # when this file was (re)converted: drives dbt's incremental
    ]
)


class FunnelError(RuntimeError):
    """A funnel file cannot be converted; the message names the file and why."""


@dataclass
class ConvertReport:
    source: str
    status: str = "converted"  # converted | skipped | failed
    rows_read: int = 0
    rows_written: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0
    bytes_written: int = 0
    partitions: dict[str, int] = field(default_factory=dict)  # "year=2016/month=10" -> rows
    outputs: list[str] = field(default_factory=list)
    rejects_file: str | None = None
    seconds: float = 0.0

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejects.values())


def output_stem(source: str) -> str:
    """The name a source file's outputs carry: its stem made safe for object keys."""
    stem = source.rsplit("/", 1)[-1]
    stem = stem[:-4] if stem.lower().endswith(".csv") else stem
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", stem)
    if safe != stem:  # keep two names that sanitize alike apart
        import hashlib

        safe += "-" + hashlib.sha256(stem.encode()).hexdigest()[:8]
    return safe


class _BlockReader:
    """Reads the file after its header in blocks of whole lines, each into the caller's buffer,
    so that several blocks can be parsed at once; call `next_block` from one thread at a time.

    The partial line at the end of a read is carried to the front of the next block; a line
    longer than the buffer gets a larger buffer; a last line without a line break gets one.
    """

    def __init__(self, handle, block_size: int):
        self.handle, self.block_size = handle, max(block_size, 1)
        self.line = 2  # the number of the next block's first line
        self.carry = b""
        self.eof = False

    def next_block(self, buf: bytearray) -> tuple[int, memoryview, int, bytearray] | None:
        """(line number of the block's first line, the block's whole lines, how many, the buffer
        they are in: `buf`, or a larger one), or None at the end of the file."""
        readinto = getattr(self.handle, "readinto", None)
        size = max(self.block_size, len(self.carry) + 1)
        while True:
            if len(buf) < size:
                buf = bytearray(size)
            filled = len(self.carry)
            buf[:filled] = self.carry
            with memoryview(buf) as view:
                while not self.eof and filled < len(buf):
                    if readinto is not None:
                        n = readinto(view[filled : len(buf)]) or 0
                    else:
                        data = self.handle.read(len(buf) - filled)
                        n = len(data)
                        view[filled : filled + n] = data
                    self.eof = n == 0
                    filled += n
            if filled == 0:
                return None
            cut = buf.rfind(b"\n", 0, filled) + 1
            if self.eof and cut < filled:  # the last line has no line break: give it one
                if filled == len(buf):
                    buf = buf + b"\n"
                else:
                    buf[filled] = ord("\n")
                filled += 1
                cut = filled
            if cut:
                break
            self.carry = bytes(buf[:filled])  # one line longer than the buffer: read on, larger
            size = 2 * len(buf)
        self.carry = bytes(buf[cut:filled])
        first, lines = self.line, buf.count(b"\n", 0, cut)
        self.line += lines
        return first, memoryview(buf)[:cut], lines, buf


def check_header(first_line: bytes, source: str) -> None:
    if b"\x00" in first_line:
        raise FunnelError(f"{source} is not a funnel file: it is binary (NUL bytes in its first line)")
    try:
        text = first_line.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise FunnelError(f"{source} is not a funnel file: its first line is not UTF-8 text") from None
    if text.split(",") != list(FUNNEL_HEADER):
        shown = text if len(text) <= 120 else text[:117] + "..."
        raise FunnelError(f"{source} is not a funnel file: header {shown!r}, expected {','.join(FUNNEL_HEADER)!r}")


class _Rejects:
    """The rejects file of one source: line number, reason, the raw line."""

    def __init__(self, store: ObjectStore, path: str):
        self.store, self.path = store, path
        self.counts: dict[str, int] = {}
        self._sink: HashingWriter | None = None

    def add(self, line: int, reason: str, text: str) -> None:
        if self._sink is None:
            self._sink = self.store.open_part(self.path)
            self._sink.write(b"line,reason,text\n")
        self.counts[reason] = self.counts.get(reason, 0) + 1
        quoted = '"' + text.replace('"', '""') + '"'
        self._sink.write(f"{line},{reason},{quoted}\n".encode("utf-8", "backslashreplace"))

    def close(self) -> str | None:
        if self._sink is None:
            return None
        self._sink.close()
        return self.path


def _parse_block_slowly(first_line: int, block: bytes, rejects: _BlockRejects) -> tuple[pa.Table, pa.Array]:
    """Line by line, for the rare block with malformed rows: exact line numbers and reasons."""
    columns: list[list[str]] = [[] for _ in FUNNEL_HEADER]
    lines: list[int] = []
    for offset, raw in enumerate(block.split(b"\n")[:-1]):
        line = first_line + offset
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            rejects.add(line, "invalid_utf8", raw.decode("utf-8", "backslashreplace"))
            continue
        values = text.split(",")
        if len(values) != len(FUNNEL_HEADER):
            rejects.add(line, "wrong_column_count", text)
            continue
        for column, value in zip(columns, values, strict=False):
            column.append(value)
        lines.append(line)
    table = pa.table({name: pa.array(col, pa.string()) for name, col in zip(FUNNEL_HEADER, columns, strict=False)})
    return table, pa.array(lines, pa.int64())


_EVENT_TYPES = pa.array(EVENT_TYPES, pa.string())
_ROW_SCHEMA = pa.schema(list(SCHEMA)[:6])  # source_file and converted_at are added on write
_READ_OPTIONS = pacsv.ReadOptions(column_names=list(FUNNEL_HEADER), use_threads=True, block_size=1 << 20)
_CONVERT_OPTIONS = pacsv.ConvertOptions(
    column_types={name: pa.string() for name in FUNNEL_HEADER},
    strings_can_be_null=False,
    quoted_strings_can_be_null=False,
)


def _parse_block(
    first_line: int, block: bytes | memoryview, lines: int, rejects: _BlockRejects
) -> tuple[pa.Table, pa.Array | None]:
    """The block's rows as strings and their line numbers (None: consecutive from first_line);
    malformed rows go to the rejects. `lines` is the number of line breaks in the block.

    The block is parsed in 1 MB pieces (about twice as fast as one piece of 16 MB: each piece
    stays in the CPU cache) on pyarrow's thread pool, which also takes the other core whenever
    the Parquet writer waits.
    """
    malformed: list[str] = []

    def on_invalid(row) -> str:
        malformed.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(block)),
            read_options=_READ_OPTIONS,
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=_CONVERT_OPTIONS,
        )
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere in the block
        return _parse_block_slowly(first_line, bytes(block), rejects)
    if malformed or table.num_rows != lines:  # quoted newlines or empty lines shift rows from lines
        return _parse_block_slowly(first_line, bytes(block), rejects)
    return table, None


_DATE = re.compile(r"\s*(\d{1,2})/(\d{1,2})/(\d{4})\b")
_DAY_TEXT = pa.array(["00", "01", "02", "03"])


def _without_rolled_over_dates(text: pa.ChunkedArray, stamps: pa.ChunkedArray) -> pa.ChunkedArray:
    """The timestamps, null where the text names a day that does not exist.

    pyarrow's strptime rolls a day past the end of its month over into the next month
    (02/30/2016 becomes 2016-03-01) where Python's refuses it. A rolled-over result falls on
    day 1, 2 or 3; for those rows only (a tenth), the day must read back as written (DD at
    offset 3), and the few that do not (a day that does not exist, or a date written without
    zero padding) are checked with `datetime`.
    """
    days = pc.day(stamps)
    suspect = pc.fill_null(pc.less_equal(days, 3), False)
    if not pc.any(suspect).as_py():
        return stamps
    rows = pc.indices_nonzero(suspect)
    written = pc.utf8_slice_codeunits(text.take(rows), 3, 5)
    read_back = _DAY_TEXT.take(days.take(rows))
    differ = pc.indices_nonzero(pc.fill_null(pc.not_equal(written, read_back), True))
    if not len(differ):
        return stamps
    impossible = []
    for row in rows.take(differ).to_pylist():
        match = _DATE.match(text[row].as_py())
        if match:
            month, day, year = (int(g) for g in match.groups())
            try:
                datetime(year, month, day)
            except ValueError:
                impossible.append(row)
    if not impossible:
        return stamps
    mask = [False] * len(stamps)
    for row in impossible:
        mask[row] = True
    return pc.if_else(pa.array(mask), pa.scalar(None, stamps.type), stamps)


def _validate(table: pa.Table, first_line: int, line_numbers: pa.Array | None, rejects: _BlockRejects) -> pa.Table:
    """Typed, valid rows (the file's own columns, `_ROW_SCHEMA`); the others go to the rejects
    with their line number and reason."""
    stamps = pc.strptime(table["event_timestamp"], format=TIMESTAMP_FORMAT, unit="us", error_is_null=True)
    stamps = _without_rolled_over_dates(table["event_timestamp"], stamps)
    checks = [
        ("bad_timestamp", pc.is_null(stamps)),
        ("unknown_event_type", pc.invert(pc.is_in(table["event_type"], value_set=_EVENT_TYPES))),
        ("empty_userid", pc.equal(table["userid"], "")),
        ("empty_product_id", pc.equal(table["product_id"], "")),
    ]
    bad = checks[0][1]
    for _, mask in checks[1:]:
        bad = pc.or_(bad, mask)
    if pc.any(bad).as_py():
        taken = pa.array([False] * table.num_rows)
        for reason, mask in checks:
            new = pc.and_(mask, pc.invert(taken))
            rows = pc.indices_nonzero(new)
            numbers = (pc.add(rows, first_line) if line_numbers is None else line_numbers.take(rows)).to_pylist()
            for line, row in zip(numbers, table.take(rows).to_pylist(), strict=False):
                rejects.add(line, reason, ",".join(row[c] for c in FUNNEL_HEADER))
            taken = pc.or_(taken, mask)
        keep = pc.invert(bad)
        table, stamps = table.filter(keep), stamps.filter(keep)
    category = table["category_id"]
    return pa.table(
        {
            "session_id": table["session_id"],
            "event_timestamp": stamps,
            "event_type": table["event_type"],
            "userid": table["userid"],
            "product_id": table["product_id"],
            "category_id": pc.if_else(pc.equal(category, ""), pa.scalar(None, pa.string()), category),
        },
        schema=_ROW_SCHEMA,
    )


def _split_by_month(table: pa.Table) -> list[tuple[tuple[int, int], pa.Table]]:
    """The rows of each (year, month), each part a copy of its own (none keeps the block alive).

    One sort of the keys, then one gather per month, instead of one filter of the whole block
    per month.
    """
    stamps = table["event_timestamp"]
    keys = pc.add(pc.multiply(pc.year(stamps), 100), pc.month(stamps))
    counts = pc.value_counts(keys)
    if len(counts) == 1:
        key = counts.field("values")[0].as_py()
        return [((key // 100, key % 100), table)]
    order = pc.sort_indices(keys)
    table = table.combine_chunks()  # one piece per column: the gathers are a third faster
    parts, start = [], 0
    for key, n in sorted(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=False)):
        parts.append(((key // 100, key % 100), table.take(order.slice(start, n))))
        start += n
    return parts


class _BlockRejects:
    """A block's rejected rows, kept in order until the block is handed over."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str]] = []

    def add(self, line: int, reason: str, text: str) -> None:
        self.rows.append((line, reason, text))


@dataclass
class _Block:
    lines: int  # lines read (rows, valid or not)
    bytes: int
    rows: int  # valid rows
    parts: list[tuple[tuple[int, int], pa.Table]]
    rejects: list[tuple[int, str, str]]


class _Producer:
    """Reads, parses, validates and splits blocks on `workers` threads at once, and hands them
    over in file order. Blocks are read one after the other (under a lock), each into its
    worker's own buffer; at most `workers + depth` blocks are read and not yet taken, so
    memory stays bounded when the writer is slower. A worker's error is raised to the taker.
    """

    def __init__(self, handle, block_size: int, workers: int = 2, depth: int = 2):
        self._reader = _BlockReader(handle, block_size)
        self._read_lock = threading.Lock()
        self._state = threading.Condition()
        self._window = workers + depth
        self._read = 0  # blocks read (the next block's sequence number)
        self._taken = 0  # blocks handed over
        self._end: int | None = None  # the number of blocks, once the end of the file is seen
        self._results: dict[int, _Block] = {}
        self._error: BaseException | None = None
        self._stop = False
        self._threads = [
            threading.Thread(target=self._run, name=f"funnel-parse-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        buf = bytearray()
        try:
            while True:
                with self._state:
                    while not (
                        self._stop
                        or self._end is not None
                        or self._error is not None
                        or self._read - self._taken < self._window
                    ):
                        self._state.wait()
                    if self._stop or self._end is not None or self._error is not None:
                        return
                with self._read_lock:
                    got = self._reader.next_block(buf)
                    if got is None:
                        with self._state:
                            self._end = self._read
                            self._state.notify_all()
                        return
                    first_line, block, lines, buf = got
                    with self._state:
                        seq = self._read
                        self._read += 1
                rejects = _BlockRejects()
                table, line_numbers = _parse_block(first_line, block, lines, rejects)
                valid = _validate(table, first_line, line_numbers, rejects)
                parts = _split_by_month(valid) if valid.num_rows else []
                item = _Block(lines, len(block), valid.num_rows, parts, rejects.rows)
                del block, table, valid
                with self._state:
                    self._results[seq] = item
                    self._state.notify_all()
        except BaseException as exc:  # raised to the taker
            with self._state:
                self._error = self._error or exc
                self._state.notify_all()

    def __iter__(self) -> Iterator[_Block]:
        while True:
            with self._state:
                while (
                    self._error is None
                    and self._taken not in self._results
                    and (self._end is None or self._taken < self._end)
                ):
                    self._state.wait()
                if self._error is not None:
                    raise self._error
                if self._taken not in self._results:
                    return  # every block was handed over
                item = self._results.pop(self._taken)
                self._taken += 1
                self._state.notify_all()
            yield item

    def close(self) -> None:
        """Stop the threads (also when the taker failed) and wait for them."""
        with self._state:
            self._stop = True
            self._state.notify_all()
        for thread in self._threads:
            thread.join()
        self._results.clear()


class _PartitionWriters:
    """One Parquet file per (year, month), fed from bounded per-partition buffers.

    A partition's buffer is written as one row group when it reaches `row_group_rows`; when all
    buffers together pass `max_buffered_rows`, the largest is written. Row groups are encoded on
    `threads` threads (pyarrow releases the GIL while it encodes), different files at the same
    time, one file's row groups in order; at most `threads` row groups are in flight. The
    buffers hold the file's own columns; source_file and converted_at, the same for every row,
    are added when a row group is written. Product ids are dictionary-encoded too (a few tens of
    thousands repeat: a file both smaller and faster to write than plain strings), with
    dictionary pages up to 8 MB so that a row group's distinct ids fit; past that Parquet falls
    back to plain encoding. User ids are not: most of a row group's users are distinct, and
    their dictionary cost more time than it saved space (measured: 40% slower for that column).
    """

    DICTIONARY = ["event_type", "product_id", "category_id", "source_file", "converted_at"]
    # Random 36- and 32-character ids: snappy saves 11-18% of their size for a sixth of the
    # converter's CPU (measured), so they are stored plain; every other column uses
    # DWH_PARQUET_COMPRESSION.
    UNCOMPRESSED = {"session_id", "userid"}
    # min/max where they can prune row groups; not for the random session, user and product ids
    STATISTICS = ["event_timestamp", "event_type", "category_id", "source_file", "converted_at"]

    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        stem: str,
        settings: Settings,
        source: str,
        converted_at: datetime,
        row_group_rows: int = 250_000,
        max_buffered_rows: int = 1_000_000,
        threads: int = 2,
    ):
        self.store, self.prefix, self.stem, self.settings = store, prefix, stem, settings
        self.source = pa.scalar(source, pa.string())
        self.converted_at = pa.scalar(converted_at, pa.timestamp("us"))
        self.row_group_rows, self.max_buffered_rows = row_group_rows, max_buffered_rows
        self.buffers: dict[tuple[int, int], list[pa.Table]] = {}
        self.buffered: dict[tuple[int, int], int] = {}
        self.writers: dict[tuple[int, int], tuple[pq.ParquetWriter, HashingWriter, str]] = {}
        self.rows: dict[tuple[int, int], int] = {}
        self.bytes = 0
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="funnel-write")
        self._in_flight: dict[tuple[int, int], Future] = {}

    def add(self, parts: list[tuple[tuple[int, int], pa.Table]]) -> None:
        for ym, part in parts:
            self.buffers.setdefault(ym, []).append(part)
            self.buffered[ym] = self.buffered.get(ym, 0) + part.num_rows
            if self.buffered[ym] >= self.row_group_rows:
                self._flush(ym)
        while sum(self.buffered.values()) > self.max_buffered_rows:
            self._flush(max(self.buffered, key=lambda ym: self.buffered[ym]))

    def _flush(self, ym: tuple[int, int]) -> None:
        parts = self.buffers.pop(ym, [])
        self.buffered.pop(ym, None)
        if not parts:
            return
        if ym not in self.writers:
            path = layout.partition_file(self.prefix, ym[0], ym[1], self.stem)
            sink = self.store.open_part(path)
            codec = "NONE" if self.settings.parquet_compression == "none" else self.settings.parquet_compression
            compression = {name: "NONE" if name in self.UNCOMPRESSED else codec for name in SCHEMA.names}
            writer = pq.ParquetWriter(
                sink,
                SCHEMA,
                compression=compression,
                use_dictionary=self.DICTIONARY,
                dictionary_pagesize_limit=8 << 20,
                write_statistics=self.STATISTICS,
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
        table = pa.table([*table.columns, pa.repeat(self.source, n), pa.repeat(self.converted_at, n)], schema=SCHEMA)
        writer.write_table(table, row_group_size=n)  # one row group per flush

    def _wait(self, ym: tuple[int, int]) -> None:
        future = self._in_flight.pop(ym, None)
        if future is not None:
            future.result()  # raises what the write raised

    def close(self) -> dict[tuple[int, int], str]:
        """Write what is buffered, then close the files (footer, then the sink: on a local
        folder an fsync each), on the writer threads too."""
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
def _conversion_memory_pool() -> Iterator[None]:
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


def landing_files(store: ObjectStore) -> list[str]:
    return [p for p in store.glob(layout.funnel_landing("*")) if p.lower().endswith(".csv")]


def _source_key(store: ObjectStore, name: str) -> str:
    """A landing file named as a key in the store, a full URI, or a bare file name."""
    if name.startswith(store.url + "/"):
        name = name[len(store.url) + 1 :]
    elif name.startswith("s3://") and store.is_s3:
        name = store.relative(name)
    if "/" not in name:
        name = layout.funnel_landing(name)
    return name


def convert_file(
    settings: Settings,
    store: ObjectStore,
    source: str,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    register: Callable[[list[tuple[int, int]]], object] | None = None,
) -> ConvertReport:
    """Convert one landing file (a store key such as landing/funnel/2016_funnel.csv).

    `progress` is called after each block with (file name, rows read, bytes read)."""
    started = time.perf_counter()
    key = _source_key(store, source)
    name = key.rsplit("/", 1)[-1]
    stem = output_stem(name)
    report = ConvertReport(source=name)
    try:
        info = store.info(key)
    except StoreError:
        raise FunnelError(f"funnel file not found: {store.uri(key)}") from None
    marker_path = layout.funnel_marker(stem)
    previous = store.read_json(marker_path) if store.exists(marker_path) else None
    if previous and not force and previous.get("source_bytes") == info.size and previous.get("source") == key:
        report.status = "skipped"
        return report
    converted_at = datetime.now(UTC).replace(tzinfo=None)
    run = layout.funnel_tmp(uuid.uuid4().hex[:12])  # outside the table location
    rejects = _Rejects(store, f"{layout.funnel_rejects(stem)}.tmp-{uuid.uuid4().hex[:6]}")
    writers = _PartitionWriters(store, run, stem, settings, name, converted_at)
    try:
        with _conversion_memory_pool():
            with store.fs.open(store.full(key), "rb") as handle:
                check_header(handle.readline(), name)
                producer = _Producer(handle, settings.funnel_block_bytes)
                try:
                    for block in producer:
                        report.bytes_read += block.bytes
                        report.rows_read += block.lines
                        report.rows_written += block.rows
                        for line, reason, text in block.rejects:
                            rejects.add(line, reason, text)
                        writers.add(block.parts)
                        del block
                        if progress:
                            progress(name, report.rows_read, report.bytes_read)
                finally:
                    producer.close()
            report.rejects = dict(rejects.counts)
            ratio = report.rows_rejected / report.rows_read if report.rows_read else 0.0
            if ratio > settings.funnel_max_reject_ratio:
                raise FunnelError(
                    f"{name}: {report.rows_rejected:,} of {report.rows_read:,} rows rejected "
                    f"({ratio:.1%} > DWH_FUNNEL_MAX_REJECT_RATIO={settings.funnel_max_reject_ratio:.1%}): "
                    f"{_reasons(report.rejects)}; nothing was converted, see {store.uri(layout.funnel_rejects(stem))}"
                )
            written = writers.close()
    except BaseException:
        writers.abort()
        _publish_rejects(store, rejects, stem)
        store.delete(run)
        raise
    # Publish: move the new files into place, drop this source's older outputs, then the marker.
    outputs = []
    for (year, month), path in sorted(written.items()):
        final = layout.funnel_lake_file(year, month, stem)
        store.move(path, final)
        outputs.append(final)
        report.partitions[layout.partition_name(year, month)] = writers.rows[(year, month)]
    for old in (previous or {}).get("outputs", []):
        if old not in outputs:
            store.delete(old)
    store.delete(run)
    report.rejects_file = _publish_rejects(store, rejects, stem)
    report.outputs = outputs
    report.bytes_written = writers.bytes
    report.seconds = time.perf_counter() - started
    store.write_json(
        marker_path,
        {
            "source": key,
            "source_bytes": info.size,
            "converted_at": converted_at.isoformat(),
            "rows_read": report.rows_read,
            "rows_written": report.rows_written,
            "rejects": report.rejects,
            "partitions": report.partitions,
            "outputs": outputs,
        },
    )
    if register:
        register(sorted(written))
    return report


def _publish_rejects(store: ObjectStore, rejects: _Rejects, stem: str) -> str | None:
    path = rejects.close()
    final = layout.funnel_rejects(stem)
    if path is None:
        store.delete(final)  # a clean re-run leaves no stale rejects behind
        return None
    store.move(path, final)
    return final


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def convert_pending(
    settings: Settings,
    store: ObjectStore,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    register: Callable[[list[tuple[int, int]]], object] | None = None,
) -> list[ConvertReport]:
    """Convert every landing file that is new or changed since its last conversion."""
    return [convert_file(settings, store, key, force, progress, register) for key in landing_files(store)]


def land_files(store: ObjectStore, paths: list) -> list[str]:
    """Copy local funnel files into the landing area (what the vendor's drop does)."""
    keys = []
    for path in paths:
        key = layout.funnel_landing(path.name)
        writer = store.open_part(key)
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    writer.write(block)
        except BaseException:
            writer.abort()
            raise
        writer.close()
        keys.append(key)
    return keys


def lake_partitions(store: ObjectStore) -> list[tuple[int, int]]:
    found = {layout.parse_partition(p) for p in store.glob(layout.funnel_lake_glob())}
    return sorted(p for p in found if p is not None)


def describe(report: ConvertReport) -> str:
    return json.dumps(dict(report.__dict__.items()), default=str)
