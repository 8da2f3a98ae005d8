"""Writing a batch's rows as Parquet parts: typed to the declaration, hashed while written."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import layout
from ..config import Settings
from ..declarations import Table
from ..manifest import Part
from ..store import HashingWriter, ObjectStore


class ExtractError(RuntimeError):
    """An extract cannot run; the message names the table and the reason."""


def conform(batch: pa.RecordBatch, schema: pa.Schema, table: Table) -> pa.RecordBatch:
    """Cast a batch as the driver typed it to the declared schema, refusing any data loss.

    Raises ExtractError naming the table and column when a value does not fit.
    """
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


def column_codecs(table: Table, codec: str) -> str | dict[str, str]:
    """The Parquet codec of each column: `codec`, except that snappy leaves CHAR(32+) columns
    (hashes and UUIDs, like Olist's hex ids) uncompressed. Snappy has no entropy coder: on
    random hex it saved 20% of the bytes for more than half of the Parquet writer's CPU time
    (BENCHMARKS.md, session 4). zstd halves them, so with zstd every column is compressed."""
    if codec != "snappy":
        return codec
    return {c.name: "none" if c.type.kind == "char" and (c.type.length or 0) >= 32 else codec for c in table.columns}


class PartWriter:
    """Writes consecutive Parquet parts of at most `part_rows` rows each into a batch folder."""

    def __init__(
        self, store: ObjectStore, folder: str, table: Table, settings: Settings, parts: list[Part] | None = None
    ):
        """`parts`: parts already written to the folder (a resumed extract); new ones follow."""
        self.store, self.folder, self.settings = store, folder, settings
        self.schema = table.arrow_schema()
        # Dictionary encoding pays for short codes (statuses, states, zips); for unique ids and
        # free text it costs time and saves nothing.
        self.dictionary_columns = [
            c.name for c in table.columns if c.type.kind in ("char", "varchar") and (c.type.length or 0) <= 16
        ]
        self.compression = column_codecs(table, settings.parquet_compression)
        self.parts: list[Part] = list(parts or [])
        self._sink: HashingWriter | None = None
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._rows = 0

    @property
    def room(self) -> int:
        """Rows the current part takes before it is closed (a new part takes `part_rows`)."""
        return self.settings.part_rows - self._rows

    def write(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            writer = self._writer or self._open()
            room = self.settings.part_rows - self._rows
            head, batch = batch.slice(0, room), batch.slice(room)
            writer.write_batch(head)
            self._rows += head.num_rows
            if self._rows >= self.settings.part_rows:
                self._close()

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
