"""The funnel lake: landing CSV files to year/month-partitioned Parquet (contract 6).

A landing file `landing/funnel/<name>.csv` converts to one Parquet file per (year, month) of
its events, `lake/funnel_events/year=<y>/month=<m>/<stem>.parquet`, named after the source, so
converting the same file again replaces its own output and never duplicates it, while two
files covering the same months both stay. The new files are written under a temporary prefix
first and moved into place only when the whole file converted and the reject ratio is
acceptable: a failed run leaves the lake as it was.

The file is read in blocks of whole lines; each block is parsed by pyarrow's multi-threaded
CSV reader and validated with vectorised kernels (the timestamp with the 12-hour pattern
`%m/%d/%Y %I:%M %p`: parsing it as a 24-hour clock shifts every afternoon event by 12 hours).
Rows that fail (wrong column count, invalid UTF-8, bad timestamp, unknown event type, empty
user or product) go to `rejects/funnel/<stem>.csv` with their line number and reason. Memory is
bounded by the block size and the partition buffers, whatever the file size.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .config import Settings
from .funnel_generate import EVENT_TYPES, FUNNEL_HEADER
from .store import HashingWriter, ObjectStore, StoreError

log = logging.getLogger(__name__)
LANDING = "landing/funnel"
LAKE = "lake/funnel_events"
REJECTS = "rejects/funnel"
STATE = "lake/_state/funnel"
TIMESTAMP_FORMAT = "%m/%d/%Y %I:%M %p"
SCHEMA = pa.schema([
    ("session_id", pa.string()),
    ("event_timestamp", pa.timestamp("us")),
    ("event_type", pa.string()),
    ("userid", pa.string()),
    ("product_id", pa.string()),
    ("category_id", pa.string()),
    ("source_file", pa.string()),
    ("converted_at", pa.timestamp("us")),  # when this file was (re)converted: drives dbt's incremental
])


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


def _blocks(handle, block_size: int) -> Iterator[tuple[int, bytes]]:
    """(line number of the block's first line, bytes of whole lines), after the header."""
    line = 2
    rest = b""
    while True:
        chunk = handle.read(block_size)
        if not chunk:
            if rest:
                yield line, rest if rest.endswith(b"\n") else rest + b"\n"
            return
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest = data
            continue
        block, rest = data[:cut], data[cut:]
        yield line, block
        line += block.count(b"\n")


def check_header(first_line: bytes, source: str) -> None:
    if b"\x00" in first_line:
        raise FunnelError(f"{source} is not a funnel file: it is binary (NUL bytes in its first line)")
    try:
        text = first_line.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise FunnelError(f"{source} is not a funnel file: its first line is not UTF-8 text") from None
    if text.split(",") != list(FUNNEL_HEADER):
        shown = text if len(text) <= 120 else text[:117] + "..."
        raise FunnelError(
            f"{source} is not a funnel file: header {shown!r}, expected {','.join(FUNNEL_HEADER)!r}"
        )


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


def _parse_block_slowly(first_line: int, block: bytes, rejects: _Rejects) -> pa.Table:
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
        for column, value in zip(columns, values):
            column.append(value)
        lines.append(line)
    arrays = {name: pa.array(col, pa.string()) for name, col in zip(FUNNEL_HEADER, columns)}
    return pa.table({**arrays, "_line": pa.array(lines, pa.int64())})


def _parse_block(first_line: int, block: bytes, rejects: _Rejects) -> pa.Table:
    """The block's rows as strings plus their line numbers; malformed rows go to the rejects."""
    malformed: list[str] = []

    def on_invalid(row) -> str:
        malformed.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=list(FUNNEL_HEADER), block_size=1 << 22),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in FUNNEL_HEADER},
                strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere in the block
        return _parse_block_slowly(first_line, block, rejects)
    if malformed or table.num_rows != block.count(b"\n"):
        return _parse_block_slowly(first_line, block, rejects)
    return table.append_column("_line", pa.array(range(first_line, first_line + table.num_rows), pa.int64()))


def _validate(table: pa.Table, source: str, converted_at: datetime, rejects: _Rejects) -> pa.Table:
    """Typed, valid rows with year and month; the others go to the rejects."""
    stamps = pc.strptime(table["event_timestamp"], format=TIMESTAMP_FORMAT, unit="us", error_is_null=True)
    checks = [
        ("bad_timestamp", pc.is_null(stamps)),
        ("unknown_event_type", pc.invert(pc.is_in(table["event_type"], value_set=pa.array(EVENT_TYPES)))),
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
            for row in table.filter(new).to_pylist():
                rejects.add(row["_line"], reason, ",".join(row[c] for c in FUNNEL_HEADER))
            taken = pc.or_(taken, mask)
        keep = pc.invert(bad)
        table, stamps = table.filter(keep), stamps.filter(keep)
    category = table["category_id"]
    typed = pa.table({
        "session_id": table["session_id"],
        "event_timestamp": stamps,
        "event_type": table["event_type"],
        "userid": table["userid"],
        "product_id": table["product_id"],
        "category_id": pc.if_else(pc.equal(category, ""), pa.scalar(None, pa.string()), category),
        "source_file": pa.array([source] * table.num_rows, pa.string()),
        "converted_at": pa.array([converted_at] * table.num_rows, pa.timestamp("us")),
    }, schema=SCHEMA)
    return typed


class _PartitionWriters:
    """One Parquet file per (year, month), fed from bounded per-partition buffers."""

    def __init__(self, store: ObjectStore, prefix: str, stem: str, settings: Settings,
                 row_group_rows: int = 250_000, max_buffered_rows: int = 1_000_000):
        self.store, self.prefix, self.stem, self.settings = store, prefix, stem, settings
        self.row_group_rows, self.max_buffered_rows = row_group_rows, max_buffered_rows
        self.buffers: dict[tuple[int, int], list[pa.Table]] = {}
        self.buffered: dict[tuple[int, int], int] = {}
        self.writers: dict[tuple[int, int], tuple[pq.ParquetWriter, HashingWriter, str]] = {}
        self.rows: dict[tuple[int, int], int] = {}
        self.bytes = 0

    def add(self, table: pa.Table) -> None:
        stamps = table["event_timestamp"]
        keys = pc.add(pc.multiply(pc.year(stamps), 100), pc.month(stamps))
        for key in pc.unique(keys).to_pylist():
            part = table.filter(pc.equal(keys, key))
            ym = (key // 100, key % 100)
            self.buffers.setdefault(ym, []).append(part)
            self.buffered[ym] = self.buffered.get(ym, 0) + part.num_rows
            if self.buffered[ym] >= self.row_group_rows:
                self._flush(ym)
        while sum(self.buffered.values()) > self.max_buffered_rows:
            self._flush(max(self.buffered, key=self.buffered.get))

    def _flush(self, ym: tuple[int, int]) -> None:
        parts = self.buffers.pop(ym, [])
        self.buffered.pop(ym, None)
        if not parts:
            return
        if ym not in self.writers:
            path = f"{self.prefix}/year={ym[0]}/month={ym[1]}/{self.stem}.parquet"
            sink = self.store.open_part(path)
            compression = None if self.settings.parquet_compression == "none" else self.settings.parquet_compression
            writer = pq.ParquetWriter(sink, SCHEMA, compression=compression,
                                      use_dictionary=["event_type", "category_id", "source_file", "converted_at"])
            self.writers[ym] = (writer, sink, path)
        table = pa.concat_tables(parts)
        self.writers[ym][0].write_table(table, row_group_size=self.row_group_rows)
        self.rows[ym] = self.rows.get(ym, 0) + table.num_rows

    def close(self) -> dict[tuple[int, int], str]:
        for ym in list(self.buffers):
            self._flush(ym)
        paths = {}
        for ym, (writer, sink, path) in self.writers.items():
            writer.close()
            sink.close()
            self.bytes += sink.bytes
            paths[ym] = path
        return paths

    def abort(self) -> None:
        for writer, sink, _ in self.writers.values():
            try:
                writer.close()
            except Exception:
                pass
            sink.abort() if not sink.closed else None


def landing_files(store: ObjectStore) -> list[str]:
    return [p for p in store.glob(f"{LANDING}/*") if p.lower().endswith(".csv")]


def _marker_path(stem: str) -> str:
    return f"{STATE}/{stem}.json"


def _source_key(store: ObjectStore, name: str) -> str:
    """A landing file named as a key in the store, a full URI, or a bare file name."""
    if name.startswith(store.url + "/"):
        name = name[len(store.url) + 1:]
    elif name.startswith("s3://") and store.is_s3:
        name = store.relative(name)
    if "/" not in name:
        name = f"{LANDING}/{name}"
    return name


def convert_file(settings: Settings, store: ObjectStore, source: str, force: bool = False,
                 progress: Callable[[str, int], None] | None = None,
                 register: Callable[[list[tuple[int, int]]], None] | None = None) -> ConvertReport:
    """Convert one landing file (a store key such as landing/funnel/2016_funnel.csv)."""
    started = time.perf_counter()
    key = _source_key(store, source)
    name = key.rsplit("/", 1)[-1]
    stem = output_stem(name)
    report = ConvertReport(source=name)
    try:
        info = store.info(key)
    except StoreError:
        raise FunnelError(f"funnel file not found: {store.uri(key)}") from None
    marker_path = _marker_path(stem)
    previous = store.read_json(marker_path) if store.exists(marker_path) else None
    if previous and not force and previous.get("source_bytes") == info.size and previous.get("source") == key:
        report.status = "skipped"
        return report
    converted_at = datetime.now(timezone.utc).replace(tzinfo=None)
    run = f"lake/_tmp/funnel/{uuid.uuid4().hex[:12]}"  # outside the table location
    rejects = _Rejects(store, f"{REJECTS}/{stem}.csv.tmp-{uuid.uuid4().hex[:6]}")
    writers = _PartitionWriters(store, run, stem, settings)
    try:
        with store.fs.open(store.full(key), "rb") as handle:
            check_header(handle.readline(), name)
            for first_line, block in _blocks(handle, settings.funnel_block_bytes):
                report.bytes_read += len(block)
                table = _parse_block(first_line, block, rejects)
                report.rows_read += block.count(b"\n")
                valid = _validate(table, name, converted_at, rejects)
                report.rows_written += valid.num_rows
                if valid.num_rows:
                    writers.add(valid)
                if progress:
                    progress(name, report.rows_read)
        report.rejects = dict(rejects.counts)
        ratio = report.rows_rejected / report.rows_read if report.rows_read else 0.0
        if ratio > settings.funnel_max_reject_ratio:
            raise FunnelError(
                f"{name}: {report.rows_rejected:,} of {report.rows_read:,} rows rejected "
                f"({ratio:.1%} > DWH_FUNNEL_MAX_REJECT_RATIO={settings.funnel_max_reject_ratio:.1%}): "
                f"{_reasons(report.rejects)}; nothing was converted, see {store.uri(_final_rejects(stem))}"
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
        final = f"{LAKE}/year={year}/month={month}/{stem}.parquet"
        store.move(path, final)
        outputs.append(final)
        report.partitions[f"year={year}/month={month}"] = writers.rows[(year, month)]
    for old in (previous or {}).get("outputs", []):
        if old not in outputs:
            store.delete(old)
    store.delete(run)
    report.rejects_file = _publish_rejects(store, rejects, stem)
    report.outputs = outputs
    report.bytes_written = writers.bytes
    report.seconds = time.perf_counter() - started
    store.write_json(marker_path, {
        "source": key, "source_bytes": info.size, "converted_at": converted_at.isoformat(),
        "rows_read": report.rows_read, "rows_written": report.rows_written, "rejects": report.rejects,
        "partitions": report.partitions, "outputs": outputs,
    })
    if register:
        register(sorted(written))
    return report


def _final_rejects(stem: str) -> str:
    return f"{REJECTS}/{stem}.csv"


def _publish_rejects(store: ObjectStore, rejects: _Rejects, stem: str) -> str | None:
    path = rejects.close()
    final = _final_rejects(stem)
    if path is None:
        store.delete(final)  # a clean re-run leaves no stale rejects behind
        return None
    store.move(path, final)
    return final


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def convert_pending(settings: Settings, store: ObjectStore, force: bool = False,
                    progress: Callable[[str, int], None] | None = None,
                    register: Callable[[list[tuple[int, int]]], None] | None = None) -> list[ConvertReport]:
    """Convert every landing file that is new or changed since its last conversion."""
    return [convert_file(settings, store, key, force, progress, register) for key in landing_files(store)]


def land_files(store: ObjectStore, paths: list) -> list[str]:
    """Copy local funnel files into the landing area (what the vendor's drop does)."""
    keys = []
    for path in paths:
        key = f"{LANDING}/{path.name}"
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
    found = set()
    for path in store.glob(f"{LAKE}/year=*/month=*/*.parquet"):
        match = re.search(r"year=(\d+)/month=(\d+)/", path)
        if match:
            found.add((int(match[1]), int(match[2])))
    return sorted(found)


def describe(report: ConvertReport) -> str:
    return json.dumps({k: v for k, v in report.__dict__.items()}, default=str)
