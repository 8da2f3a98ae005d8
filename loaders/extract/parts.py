"""Writing a batch's rows as Parquet parts: typed to the declaration, checksummed while written."""

from __future__ import annotations

import math
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import layout
from ..config import Settings
from ..declarations import CHANGE_SEQ_COLUMN, OP_COLUMN, Table
from ..manifest import Part
from ..store import HashingWriter, ObjectStore


class ExtractError(RuntimeError):
    """An extract cannot run; the message names the table and the reason."""


def conform(batch: pa.RecordBatch, schema: pa.Schema, table: Table) -> pa.RecordBatch:
    """Cast a batch as the driver typed it to the declared schema, refusing any data loss.

    Raises ExtractError naming the table, column, key and value when a value does not fit
    (loaders/extract/values.py: also NUL characters and strings over their declared length).
    """
    from .values import check_strings, first_uncastable, key_of, refuse

    arrays = []
    for target in schema:
        column = batch.column(target.name)
        try:
            if pa.types.is_decimal(target.type) and pa.types.is_floating(column.type):
                column = pc.round(column, ndigits=target.type.scale)  # SQLite keeps money as REAL
            if not column.type.equals(target.type):
                column = column.cast(target.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            i = first_uncastable(column, target.type)
            if i is None:
                raise ExtractError(
                    f"table {table.name!r}, column {target.name!r}: cannot store {column.type} values "
                    f"as {target.type}: {exc}"
                ) from None
            raise refuse(
                table, target.name, key_of(batch, table, i), column[i].as_py(), f"does not fit {target.type}"
            ) from None
        arrays.append(column)
    conformed = pa.RecordBatch.from_arrays(arrays, schema=schema)
    check_strings(conformed, table)
    return conformed


def with_change_columns(batch: pa.RecordBatch, table: Table, op: str, first_seq: int) -> pa.RecordBatch:
    """A conformed batch with `_op` (`op` on every row) and `_change_seq` (`first_seq`,
    `first_seq + 1`, ... in batch order) appended (contract 8; PART_CHANGE_COLUMNS).

    `_row_hash` is not computed here: the warehouse computes it when it stages the batch, with
    the same rendering (loaders/load/statements.py, `hash_stage_statement`); hashing every row
    in this process was about a third of the extract's CPU (BENCHMARKS.md, issue 18: row hash
    at the load). Raises ExtractError naming the table and column for a double the hash cannot
    render (NaN, infinite, 1e32 or more), so that such a batch is never published."""
    from ..verify.checksum import check_doubles, int64_range, repeated_string

    n = batch.num_rows
    try:
        check_doubles(batch, table.columns)
    except ValueError as exc:
        raise ExtractError(f"table {table.name!r}, {exc}") from None
    arrays = [*batch.columns, repeated_string(op, n), int64_range(first_seq, n)]  # no pandas import
    return pa.RecordBatch.from_arrays(arrays, schema=table.part_schema())


def column_codecs(table: Table, codec: str) -> str | dict[str, str]:
    """The Parquet codec of each column: `codec`, except that snappy leaves CHAR(32+) columns
    (hashes and UUIDs, like Olist's hex ids) uncompressed. Snappy has no entropy coder: on
    random hex it saved 20% of the bytes for more than half of the Parquet writer's CPU time
    (BENCHMARKS.md, session 4). zstd halves them, so with zstd every column is compressed."""
    if codec != "snappy":
        return codec
    codecs = {c.name: "none" if c.type.kind == "char" and (c.type.length or 0) >= 32 else codec for c in table.columns}
    return {**codecs, OP_COLUMN: codec, CHANGE_SEQ_COLUMN: codec}


MIN_COPY_PART_BYTES = 1024 * 1024
"""AWS's lower bound for a COPY input file after compression (1 MB; the upper bound is 1 GB)."""


def plan_parts(total_bytes: int, slices: int, max_part_bytes: int) -> int:
    """How many parts a batch of about `total_bytes` compressed bytes is split into for COPY.

    Redshift loads the files of one COPY in parallel, one file per slice at a time, so AWS's
    loading guidance ("Loading data files", Redshift Database Developer Guide) is: a number of
    files that is a multiple of the cluster's slices, of about equal size, each between 1 MB and
    1 GB after compression. The rule here: the smallest multiple of `slices` that keeps every
    part at or under `max_part_bytes`; when that would make parts under 1 MB (a batch smaller
    than one megabyte per slice), as many parts of at least 1 MB as the batch fills (at least
    one), since a slice with a tiny file gains nothing. `slices` < 1 or no bytes: one part.
    """
    if slices < 1 or total_bytes <= 0:
        return 1
    needed = math.ceil(total_bytes / max(1, max_part_bytes))
    parts = slices * math.ceil(needed / slices)
    if total_bytes / parts < MIN_COPY_PART_BYTES:
        parts = max(1, total_bytes // MIN_COPY_PART_BYTES)
    return parts


class PartWriter:
    """Writes consecutive Parquet parts into a batch folder.

    Parts hold at most `settings.part_rows` rows. When `expected_rows` is given (a historical
    batch) and `settings.redshift_slices` is set, the parts are sized for the cluster instead:
    once the first rows (the probe) are written, their compressed size per row estimates the
    batch's bytes, plan_parts() decides the part count and the parts share `expected_rows`
    equally (the first part may be larger: it holds at least the probe); the last planned part takes
    whatever remains, so a source that grew since it was counted adds no tiny extra part.
    """

    def __init__(
        self,
        store: ObjectStore,
        folder: str,
        table: Table,
        settings: Settings,
        expected_rows: int | None = None,
        parts: list[Part] | None = None,
    ):
        """`parts`: parts already in the folder (a resumed extract): new ones follow them."""
        self.store, self.folder, self.settings = store, folder, settings
        self.part_rows = settings.part_rows
        self.expected_rows = expected_rows if settings.redshift_slices and expected_rows else None
        self.planned_parts: int | None = None
        self.schema = table.part_schema()
        # Dictionary encoding pays for short codes (statuses, states, zips); for unique ids and
        # free text it costs time and saves nothing.
        self.dictionary_columns = [
            c.name for c in table.columns if c.type.kind in ("char", "varchar") and (c.type.length or 0) <= 16
        ] + [OP_COLUMN]
        self.compression = column_codecs(table, settings.parquet_compression)
        self.parts: list[Part] = list(parts or [])
        self._sink: HashingWriter | None = None
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._rows = 0  # in the part being written
        self._written = 0  # in all parts
        self.on_close: Callable[[int], None] | None = None
        """Called with `written` each time a part is closed (loaders/extract/resume.py)."""

    @property
    def written(self) -> int:
        """Rows handed to this writer so far (parts passed in at the start not counted)."""
        return self._written

    def write(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            writer = self._writer or self._open()
            last = self.planned_parts is not None and len(self.parts) == self.planned_parts - 1
            room = batch.num_rows if last else max(1, self._part_end() - self._written)
            if self.expected_rows and self.planned_parts is None:
                room = min(room, self._probe_rows())
            head, batch = batch.slice(0, room), batch.slice(room)
            writer.write_batch(head)
            self._rows += head.num_rows
            self._written += head.num_rows
            if self.expected_rows and self.planned_parts is None:
                self._plan()
            if not last and self._written >= self._part_end():
                self._close()

    def _part_end(self) -> int:
        """Rows written in all parts once the current part is full."""
        if self.planned_parts is None or not self.expected_rows:
            return self._written - self._rows + self.part_rows
        # the rows still expected, shared equally by the parts still planned (the first part may
        # hold more: the probe)
        before = self._written - self._rows
        remaining = max(1, self.planned_parts - len(self.parts))
        return before + max(1, math.ceil((self.expected_rows - before) / remaining))

    def _probe_rows(self) -> int:
        """Rows written before the plan: a small share of the batch, so that even a batch read in
        one piece can still be split (a sixteenth of one slice's share, 256 to batch_rows rows)."""
        assert self.expected_rows
        share = self.expected_rows // (16 * self.settings.redshift_slices)
        return max(1, min(self.settings.batch_rows, max(256, share)))

    def _plan(self) -> None:
        """Part count and rows per part from the first rows' compressed size (see the class doc)."""
        assert self._sink is not None and self.expected_rows
        bytes_per_row = self._sink.bytes / max(1, self._rows)
        total = int(bytes_per_row * self.expected_rows)
        self.planned_parts = plan_parts(total, self.settings.redshift_slices, self.settings.copy_part_bytes)
        self.part_rows = math.ceil(self.expected_rows / self.planned_parts)

    def _open(self) -> pq.ParquetWriter:
        self._path = layout.batch_part(self.folder, len(self.parts))
        self._sink = self.store.open_part(self._path)
        self._writer = pq.ParquetWriter(
            self._sink,
            self.schema,
            compression=self.compression,
            write_statistics=True,
            store_schema=False,
            use_dictionary=self.dictionary_columns,
        )
        return self._writer

    def _close(self) -> None:
        assert self._writer is not None and self._sink is not None
        self._writer.close()
        self._sink.close()
        self.parts.append(Part(self._path, self._rows, self._sink.bytes, self._sink.sha256))
        self._writer, self._sink, self._rows = None, None, 0
        if self.on_close is not None:
            self.on_close(self._written)

    def finish(self) -> list[Part]:
        if self._writer is not None:
            self._close()
        return self.parts

    def abort(self) -> None:
        """Drop the part being written (no object appears); finished parts stay for the caller
        to remove with the batch folder."""
        if self._writer is not None:
            try:  # close the writer first, or its finalizer writes a footer into a closed sink
                self._writer.close()
            except Exception:
                pass
        if self._sink is not None:
            self._sink.abort()
        self._writer, self._sink = None, None
