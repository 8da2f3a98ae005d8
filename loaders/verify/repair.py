"""`dwh verify --repair`: a repair batch through the normal contract (contracts 2, 3 and 8).

For the differences `verify_table` found: the current source version of every missing or
changed key (`_op` 'r'), a tombstone for every extra key (primary key set, other columns NULL,
cursor = the source clock now, `_op` 'd'). The batch is an ordinary `current` batch (parts,
manifest, `"repair": true`); the watermark does not move. `dwh load` and `dwh build` then
bring it into raw, staging and the facts like any other batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime

import pyarrow as pa

from .. import layout
from ..config import Settings
from ..declarations import OP_DELETE, OP_SNAPSHOT, PART_CHANGE_COLUMNS, Table
from ..extract.batch import new_batch_id
from ..extract.parts import PartWriter, conform, with_change_columns
from ..extract.values import check_strings, refuse
from ..manifest import MANIFEST_VERSION, logical_name, write_manifests
from ..sources import SourceEngine
from ..store import ObjectStore
from .diff import TableDiff

CHUNK = 500


def _source_rows(engine: SourceEngine, table: Table, keys: list[tuple]) -> Iterator[pa.RecordBatch]:
    """The current source rows of `keys`, as conformed record batches, CHUNK keys per query."""
    cols = ", ".join(engine.select_expression(table, c) for c in table.column_names)
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        match = " OR ".join(
            "("
            + " AND ".join(
                f"{engine.quote(k)} = {engine.literal(v)}" for k, v in zip(table.primary_key, key, strict=True)
            )
            + ")"
            for key in chunk
        )
        rows = engine.execute(f"SELECT {cols} FROM {engine.quote(table.name)} WHERE {match}")
        if rows:
            data = {c: [r[j] for r in rows] for j, c in enumerate(table.column_names)}
            yield conform(_typed(data, table), table.arrow_schema(), table)


def _typed(data: dict[str, list], table: Table) -> pa.RecordBatch:
    arrays = []
    for c in table.columns:
        values = data[c.name]
        if c.type.kind == "timestamp":
            values = [datetime.fromisoformat(v) if isinstance(v, str) else v for v in values]
        if c.type.kind == "decimal":
            from decimal import Decimal

            values = [None if v is None else Decimal(str(v)) for v in values]
        try:
            arrays.append(pa.array(values, c.type.arrow()))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:  # e.g. a widened source column
            i = _first_unfit(values, c.type.arrow())
            key = ", ".join(f"{k}={data[k][i]!r}" for k in table.primary_key)
            raise refuse(table, c.name, key, values[i], f"does not fit the declared {c.type.arrow()}") from exc
    batch = pa.RecordBatch.from_arrays(arrays, schema=table.arrow_schema())
    check_strings(batch, table)  # the extract's own checks: a NUL, a string over its declared length
    return batch


def _first_unfit(values: list, target: pa.DataType) -> int:
    """The index of the first value pyarrow cannot hold as `target` (one exists: the caller saw it fail)."""
    for i, v in enumerate(values):
        try:
            pa.array([v], target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return i
    return 0


def _tombstones(table: Table, keys: list[tuple], detected: datetime) -> pa.RecordBatch:
    data: dict[str, list] = {c: [None] * len(keys) for c in table.column_names}
    for j, k in enumerate(table.primary_key):
        data[k] = [key[j] for key in keys]
    data[table.cursor] = [detected] * len(keys)
    return _typed(data, table)


def write_repair_batch(
    settings: Settings, engine: SourceEngine, store: ObjectStore, table: Table, diff: TableDiff
) -> str | None:
    """Write the repair batch of one table's differences; return its batch id (None: nothing to repair).

    Raises ExtractError (one line naming table, column, key and value; nothing written) when a
    source row does not fit the declared columns, as the extract would (loaders/extract/values.py):
    for example a value of a widened source column that the declaration does not hold yet."""
    if diff.equal:
        return None
    detected = engine.now()
    batch_id = new_batch_id()
    folder = layout.batch_dir(table.name, "current", batch_id)
    writer = PartWriter(store, folder, table, settings)
    rows = 0
    try:
        for batch in _source_rows(engine, table, diff.missing + diff.changed):
            writer.write(with_change_columns(batch, table, OP_SNAPSHOT, rows))
            rows += batch.num_rows
        if diff.extra:
            writer.write(with_change_columns(_tombstones(table, diff.extra, detected), table, OP_DELETE, rows))
            rows += len(diff.extra)
        parts = writer.finish()
    except BaseException:
        writer.abort()
        store.delete(folder)
        raise
    if not rows:
        return None
    manifest = {
        "version": MANIFEST_VERSION,
        "table": table.name,
        "batch_id": batch_id,
        "mode": "current",
        "repair": True,
        "created_at": datetime.now(UTC).isoformat(),
        "source_dialect": engine.name,
        "format": "parquet",
        "compression": settings.parquet_compression,
        "cursor": {"column": table.cursor, "lower": None, "upper": detected.isoformat(), "max": None},
        "primary_key": list(table.primary_key),
        "columns": [
            {"name": c.name, "type": logical_name(c.type), "arrow": str(c.type.arrow())} for c in table.columns
        ],
        "change_columns": list(PART_CHANGE_COLUMNS),
        "snapshot": False,
        "row_count": rows,
        "parts": [{**asdict(p), "path": p.path.rsplit("/", 1)[1]} for p in parts],
    }
    write_manifests(store, folder, manifest, parts)
    return batch_id
