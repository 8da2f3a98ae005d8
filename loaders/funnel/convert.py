"""The funnel lake: landing CSV files to year/month Parquet (docs/architecture.md, contract 6).

A landing file `landing/funnel/<name>.csv` converts to one Parquet file per (year, month) of
its events, `lake/funnel_events/year=<y>/month=<m>/<stem>.parquet`, named after the source, so
converting the same file again replaces its own output and never duplicates it, while two
files covering the same months both stay. The new files are written under a temporary prefix
first and moved into place only when the whole file converted and the reject ratio is
acceptable: a failed run leaves the lake as it was.

The columns, their types, lengths and checks are declared once, in
models/staging/funnel/_funnel__sources.yml (loaders/declarations/funnel.py). This module
orchestrates the jobs, each in its own module:

    blocks.py    read the file in blocks of whole lines, and its SHA-256 on the way
    parse.py     the header check; a block's rows as strings (pyarrow, or line by line)
    validate.py  the declared checks (timestamp format, accepted values, required, length)
    months.py    valid rows split by their event's (year, month)
    producer.py  the above on two threads, blocks handed over in file order
    writers.py   buffered rows -> one Parquet file per month, row groups on two threads
    rejects.py   rows that fail, with line number and reason, to rejects/funnel/<stem>.csv
    publish.py   the files moved into the lake, then the marker (state/funnel/<stem>.json)
    glue.py      the Glue Data Catalog table and partitions

Memory is bounded by the block size, the four blocks between reading and buffering, the
partition buffers and the two row groups being encoded, whatever the file size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import layout
from ..config import Settings
from ..declarations import funnel_declaration
from ..runs import utcnow
from ..store import ObjectStore, StoreError
from .parse import FunnelError, check_header, file_format
from .producer import Producer
from .publish import is_unchanged, publish, read_marker
from .rejects import RejectsFile, publish_rejects, reasons
from .validate import checks_of
from .writers import PartitionWriters, conversion_memory_pool

log = logging.getLogger("loaders.funnel")


@dataclass
class ConvertReport:
    """What converting one landing file did. Rows are the file's non-empty lines after the header."""

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
    sha256: str | None = None
    error: str | None = None  # status failed: the one-line reason

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejects.values())


def output_stem(source: str) -> str:
    """The name a source file's outputs carry: its stem made safe for object keys."""
    stem = source.rsplit("/", 1)[-1]
    stem = stem[:-4] if stem.lower().endswith(".csv") else stem
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", stem)
    if safe != stem:  # keep two names that sanitize alike apart
        safe += "-" + hashlib.sha256(stem.encode()).hexdigest()[:8]
    return safe


def landing_files(store: ObjectStore) -> list[str]:
    """The landing area's funnel files (store keys), sorted."""
    return [p for p in store.glob(layout.funnel_landing("*")) if p.lower().endswith(".csv")]


def source_key(store: ObjectStore, name: str) -> str:
    """A landing file named as a key in the store, a full URI, or a bare file name -> its key."""
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
    """Convert one landing file (a store key such as landing/funnel/2016_funnel.csv, a URI or a
    bare name) unless its marker shows the same content was converted (see `force`).

    `progress` is called after each block with (file name, rows read, bytes read); `register`
    with the (year, month) partitions written, after publishing. Raises FunnelError (the file
    is not a funnel file, or too many rows were rejected: nothing is published) or StoreError.
    """
    started = time.perf_counter()
    declaration = funnel_declaration(settings.project_dir)
    fmt, checks = file_format(declaration), checks_of(declaration)
    key = source_key(store, source)
    name = key.rsplit("/", 1)[-1]
    stem = output_stem(name)
    report = ConvertReport(source=name)
    try:
        info = store.info(key)
    except StoreError:
        raise FunnelError(f"funnel file not found: {store.uri(key)}") from None
    previous = read_marker(store, stem)
    if not force and is_unchanged(store, key, info.size, previous):
        report.status = "skipped"
        return report
    converted_at = utcnow()
    run = layout.funnel_tmp(uuid.uuid4().hex[:12])  # outside the table location
    rejects = RejectsFile(store, f"{layout.funnel_rejects(stem)}.tmp-{uuid.uuid4().hex[:6]}")
    writers = PartitionWriters(store, run, stem, settings, declaration, name, converted_at)
    try:
        with conversion_memory_pool():
            with store.fs.open(store.full(key), "rb") as handle:
                header = handle.readline()
                check_header(header, name, fmt)
                producer = Producer.over(
                    handle, header, settings.funnel_block_bytes, fmt, checks, declaration.event_time.name
                )
                try:
                    for block in producer:
                        report.bytes_read += block.bytes
                        report.rows_read += block.rows_read
                        report.rows_written += block.rows
                        for line, reason, text in block.rejects:
                            rejects.add(line, reason, text)
                        writers.add(block.parts)
                        del block
                        if progress:
                            progress(name, report.rows_read, report.bytes_read)
                finally:
                    producer.close()
                report.sha256 = producer.reader.sha256()
            report.rejects = dict(rejects.counts)
            ratio = report.rows_rejected / report.rows_read if report.rows_read else 0.0
            if ratio > settings.funnel_max_reject_ratio:
                raise FunnelError(
                    f"{name}: {report.rows_rejected:,} of {report.rows_read:,} rows rejected "
                    f"({ratio:.1%} > DWH_FUNNEL_MAX_REJECT_RATIO={settings.funnel_max_reject_ratio:.1%}): "
                    f"{reasons(report.rejects)}; nothing was converted, see {store.uri(layout.funnel_rejects(stem))}"
                )
            written = writers.close()
    except BaseException:
        writers.abort()
        publish_rejects(store, rejects, stem)
        store.delete(run)
        raise
    report.partitions = {layout.partition_name(y, m): writers.rows[(y, m)] for (y, m) in sorted(written)}
    marker = {
        "source": key,
        "source_bytes": info.size,
        "source_sha256": report.sha256,
        "converted_at": converted_at.isoformat(),
        "rows_read": report.rows_read,
        "rows_written": report.rows_written,
        "rejects": report.rejects,
        "partitions": report.partitions,
    }
    report.rejects_file = publish_rejects(store, rejects, stem)
    report.outputs, _ = publish(store, written, stem, previous, marker)
    store.delete(run)
    report.bytes_written = writers.bytes
    report.seconds = time.perf_counter() - started
    if register:
        register(sorted(written))
    return report


def convert_pending(
    settings: Settings,
    store: ObjectStore,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    register: Callable[[list[tuple[int, int]]], object] | None = None,
) -> list[ConvertReport]:
    """Convert every landing file that is new or changed since its last conversion. A file that
    fails costs only itself: its report has status `failed` and the error; the others go on."""
    reports = []
    for key in landing_files(store):
        try:
            reports.append(convert_file(settings, store, key, force, progress, register))
        except (FunnelError, StoreError) as exc:
            failed = ConvertReport(source=key.rsplit("/", 1)[-1], status="failed", error=str(exc).splitlines()[0])
            reports.append(failed)
    return reports


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
    """The (year, month) partitions the lake holds files in."""
    found = {layout.parse_partition(p) for p in store.glob(layout.funnel_lake_glob())}
    return sorted(p for p in found if p is not None)


def describe(report: ConvertReport) -> str:
    """A report as one JSON object (for logs)."""
    return json.dumps(dict(report.__dict__.items()), default=str)
