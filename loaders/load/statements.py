"""The SQL of one batch's load, the same for every warehouse but the staging step."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from .. import layout
from ..declarations import (
    BATCH_ID_COLUMN,
    CHANGE_COLUMNS,
    CHANGE_SEQ_COLUMN,
    LOADED_AT_COLUMN,
    OP_COLUMN,
    OP_DELETE,
    OP_SNAPSHOT,
    ROW_HASH_COLUMN,
    Table,
)
from ..verify.checksum import row_hash_sql
from ..warehouses import LOAD_LOG, Warehouse, literal, quote
from ..warehouses.sql import timestamp


@dataclass(frozen=True)
class BatchBounds:
    """The range a staged batch covers: its first key column and its cursor, as the warehouse
    orders them (read from the stage, so its own collation decides)."""

    key_min: object
    key_max: object
    cursor_min: object | None
    cursor_max: object | None
    cursor_nulls: bool = False


def bounds_statement(wh: Warehouse, table: Table) -> str:
    """The bounds of the staged batch: one short scan of the stage table."""
    key, cursor = quote(table.primary_key[0]), quote(table.cursor)
    return (
        f"SELECT min({key}), max({key}), min({cursor}), max({cursor}), count(*) - count({cursor}) "
        f"FROM {wh.stage_name(table)}"
    )


def stage_bounds(wh: Warehouse, table: Table) -> BatchBounds | None:
    """The staged batch's bounds, or None for an empty stage."""
    rows = wh.execute(bounds_statement(wh, table))
    if not rows or rows[0][0] is None:
        return None
    key_min, key_max, cursor_min, cursor_max, nulls = rows[0]
    return BatchBounds(key_min, key_max, cursor_min, cursor_max, bool(nulls))


def bounds_condition(table: Table, bounds: BatchBounds, alias: str = "r") -> str:
    """The raw rows an existence check needs to see: those whose first key column and cursor lie
    in the batch's range. Constants, so zone maps (DuckDB, Redshift) and a BRIN index
    (PostgreSQL) skip the rest of the table; the check's own conditions are unchanged, so it
    composes with any (a version already there has the key, hence the range)."""
    key, cursor = f"{alias}.{quote(table.primary_key[0])}", f"{alias}.{quote(table.cursor)}"
    conditions = [f"{key} BETWEEN {literal(bounds.key_min)} AND {literal(bounds.key_max)}"]
    if isinstance(bounds.cursor_min, datetime) and isinstance(bounds.cursor_max, datetime):
        in_range = f"{cursor} BETWEEN {timestamp(bounds.cursor_min)} AND {timestamp(bounds.cursor_max)}"
        conditions.append(f"({in_range} OR {cursor} IS NULL)" if bounds.cursor_nulls else in_range)
    return " AND ".join(conditions)


def _stamp(loaded_at: datetime) -> str:
    return f"CAST({literal(loaded_at.strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMP)"


def insert_statement(
    wh: Warehouse,
    table: Table,
    batch_id: str,
    loaded_at: datetime,
    dedupe: bool = True,
    bounds: BatchBounds | None = None,
) -> str:
    """New row versions only: a staged row is not inserted when its key's latest version in the
    raw table has the same `_row_hash` (contract 9: versions by content, so a changed row under
    an unchanged cursor is new and an identical re-read adds nothing). "Latest" is the staging
    order (cursor, `_batch_id`, `_change_seq`, all descending; macros/latest_version.sql): a
    raw version with the staged hash counts only if no later version of the key has another
    hash, so a value changed back (A, B, A under one cursor) or a deleted row inserted again
    with its old content is a new version, not a duplicate.
    `dedupe=False` (a binlog capture batch, exactly-once by its log range: contract 11) inserts
    every row: a value changed back, or a row deleted and inserted again with the same content,
    is a new version that must win in commit order.
    With `bounds`, the check reads only the raw rows in the batch's key range, and for the
    version with the same hash also in its cursor range: that version has the same declared
    columns, cursor included (docs/architecture.md, contract 4); a later version of the key may
    have any cursor, so it is bounded by the key only. An hourly load costs the batch, not the
    table."""
    cols = [quote(c) for c in (*table.column_names, *CHANGE_COLUMNS)]
    match = " AND ".join(f"r.{quote(k)} = s.{quote(k)}" for k in (*table.primary_key, ROW_HASH_COLUMN))
    same_key = " AND ".join(f"n.{quote(k)} = r.{quote(k)}" for k in table.primary_key)
    raw = wh.raw_name(table.name)
    r_rows, n_rows = f"{raw} AS r", f"{raw} AS n"
    if bounds is not None:  # derived tables, so every engine pushes the constants into its scan
        key_only = replace(bounds, cursor_min=None, cursor_max=None)
        r_rows = f"(SELECT * FROM {raw} AS r WHERE {bounds_condition(table, bounds)}) AS r"
        n_rows = f"(SELECT * FROM {raw} AS n WHERE {bounds_condition(table, key_only, 'n')}) AS n"
    cur, bid, seq = quote(table.cursor), quote(BATCH_ID_COLUMN), quote(CHANGE_SEQ_COLUMN)
    later = (
        f"(n.{cur} > r.{cur} OR (n.{cur} = r.{cur} AND (n.{bid} > r.{bid} "
        f"OR (n.{bid} = r.{bid} AND n.{seq} > r.{seq}))))"
    )
    superseded = (
        f"SELECT 1 FROM {n_rows} WHERE {same_key} "
        f"AND n.{quote(ROW_HASH_COLUMN)} <> r.{quote(ROW_HASH_COLUMN)} AND {later}"
    )
    extra = f"{quote(BATCH_ID_COLUMN)}, {quote(LOADED_AT_COLUMN)}"
    return (
        f"INSERT INTO {wh.raw_name(table.name)} ({', '.join(cols)}, {extra})\n"
        f"SELECT {', '.join('s.' + c for c in cols)}, {literal(batch_id)}, {_stamp(loaded_at)}\n"
        f"FROM {wh.stage_name(table)} AS s"
        + (
            f"\nWHERE NOT EXISTS (SELECT 1 FROM {r_rows} WHERE {match}\n  AND NOT EXISTS ({superseded}))"
            if dedupe
            else ""
        )
    )


def hash_stage_statement(wh: Warehouse, table: Table) -> str:
    """`_row_hash` of every staged row, computed by the warehouse (contract 9: the hash of the
    batch's columns, `row_hash_sql`, the rendering that gives the same text and hash on every
    engine as the extract's before issue 18, tests/test_checksum.py). For a batch whose parts
    lack it: every batch extracted since issue 18."""
    return f"UPDATE {wh.stage_name(table)} SET {quote(ROW_HASH_COLUMN)} = {row_hash_sql(wh.name, table.columns)}"


def after_stage_statements(wh: Warehouse, table: Table, manifest: dict) -> list[str]:
    """What the stage needs once filled, from the columns the parts hold (the manifest's
    `change_columns`): none (before contract 8), all three filled; `_op` and `_change_seq`
    (since issue 18), `_row_hash` computed, unless the engine computed it while staging
    (`Warehouse.hashes_while_staging`, DuckDB); all three (contract 8 to issue 18), nothing."""
    if not manifest.get("change_columns"):
        return [legacy_stage_statement(wh, table)]
    if wh.hashes_missing(manifest) and not wh.hashes_while_staging:
        return [hash_stage_statement(wh, table)]
    return []


def legacy_stage_statement(wh: Warehouse, table: Table) -> str:
    """A batch extracted before contract 8 has no `_op`, `_row_hash`, `_change_seq`: fill them
    in the stage ('r', the row hash computed by the warehouse with the extract's expression, 0)."""
    return (
        f"UPDATE {wh.stage_name(table)} SET {quote(OP_COLUMN)} = {literal(OP_SNAPSHOT)}, "
        f"{quote(ROW_HASH_COLUMN)} = {row_hash_sql(wh.name, table.columns)}, {quote(CHANGE_SEQ_COLUMN)} = 0"
    )


def latest_versions_sql(wh: Warehouse, table: Table, columns: list[str], where: str = "") -> str:
    """The latest version of every key in the raw table (contract 5 and 8: cursor desc,
    `_batch_id` desc, `_change_seq` desc), tombstones included, with `columns` (quoted names),
    `_op` and `_row_hash`: the same ranking as macros/latest_version.sql. `where`, a condition
    on the raw table's key columns only (so it keeps or drops every version of a key alike),
    filters the raw rows before the ranking (`dwh verify` reads one set of key buckets)."""
    keys = ", ".join(quote(k) for k in table.primary_key)
    order = f"{quote(table.cursor)} DESC, {quote(BATCH_ID_COLUMN)} DESC, {quote(CHANGE_SEQ_COLUMN)} DESC"
    picked = ", ".join(dict.fromkeys([*columns, quote(OP_COLUMN), quote(ROW_HASH_COLUMN)]))
    return (
        f"SELECT {picked} FROM (SELECT {picked}, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {order}) "
        f"AS _version_rank FROM {wh.raw_name(table.name)}{' WHERE ' + where if where else ''}) AS ranked "
        "WHERE _version_rank = 1"
    )


def snapshot_tombstone_statement(
    wh: Warehouse, table: Table, manifest: dict, batch_id: str, loaded_at: datetime
) -> str:
    """For a snapshot (historical) batch: a tombstone for every key whose latest version in raw
    is not a tombstone and that the snapshot lacks (deleted in the source). Primary key set,
    other declared columns NULL, the cursor = the extract's upper bound (the detection time),
    `_op` 'd', `_change_seq` after the batch's rows (contract 8)."""
    raw = wh.raw_name(table.name)
    keys = [quote(k) for k in table.primary_key]
    upper = manifest["cursor"]["upper"].replace("T", " ")
    detected = f"CAST({literal(upper)} AS TIMESTAMP)"
    fields = []
    for c in table.columns:
        if c.name in table.primary_key:
            fields.append(f"l.{quote(c.name)}")
        elif c.name == table.cursor:
            fields.append(f"{detected} AS {quote(c.name)}")
        else:
            fields.append(f"CAST(NULL AS {c.type.sql(wh.name)}) AS {quote(c.name)}")
    absent = " AND ".join(f"s.{k} = l.{k}" for k in keys)
    gone = (
        f"SELECT {', '.join(fields)}, ROW_NUMBER() OVER (ORDER BY {', '.join('l.' + k for k in keys)}) AS n\n"
        f"FROM ({latest_versions_sql(wh, table, keys)}) AS l\n"
        f"WHERE COALESCE(l.{quote(OP_COLUMN)}, 'r') <> {literal(OP_DELETE)}\n"
        f"AND NOT EXISTS (SELECT 1 FROM {wh.stage_name(table)} AS s WHERE {absent})"
    )
    cols = [quote(c) for c in table.column_names]
    return (
        f"INSERT INTO {raw} ({', '.join(cols)}, {quote(OP_COLUMN)}, {quote(ROW_HASH_COLUMN)}, "
        f"{quote(CHANGE_SEQ_COLUMN)}, {quote(BATCH_ID_COLUMN)}, {quote(LOADED_AT_COLUMN)})\n"
        f"SELECT {', '.join('g.' + c for c in cols)}, {literal(OP_DELETE)}, "
        f"{row_hash_sql(wh.name, table.columns, 'g')}, {int(manifest['row_count'])} + g.n, "
        f"{literal(batch_id)}, {_stamp(loaded_at)}\n"
        f"FROM (\n{gone}\n) AS g"
    )


def log_statement(wh: Warehouse, manifest: dict, uri: str, inserted_sql: str, loaded_at: datetime) -> str:
    """The batch's row in the load log; `inserted_sql` counts the rows this load inserted."""
    cursor = manifest["cursor"]
    values = [
        literal(manifest["batch_id"]),
        literal(manifest["table"]),
        literal(manifest["mode"]),
        literal(uri),
        literal(int(manifest["row_count"])),
        inserted_sql,
        literal(cursor["lower"].replace("T", " ") if cursor["lower"] else None),
        literal(cursor["upper"].replace("T", " ")),
        literal(loaded_at.strftime("%Y-%m-%d %H:%M:%S.%f")),
    ]
    return (
        f"INSERT INTO {wh.raw_name(LOAD_LOG)} (batch_id, table_name, mode, manifest_uri, rows_in_batch, "
        "rows_inserted, cursor_lower, cursor_upper, loaded_at)\nVALUES (" + ", ".join(values) + ")"
    )


def batch_statements(
    wh: Warehouse, table: Table, manifest: dict, folder: str, loaded_at: datetime, bounds: BatchBounds | None = None
) -> dict[str, list[str]]:
    """Every statement of one batch's load, in order, as the warehouse would receive them; the
    insert is restricted to `bounds` (the loader reads them from the stage with
    `bounds_statement` once it is filled)."""
    batch_id = manifest["batch_id"]
    inserted = f"(SELECT count(*) FROM {wh.raw_name(table.name)} WHERE {quote(BATCH_ID_COLUMN)} = {literal(batch_id)})"
    lock = wh.lock_statement()
    snapshot = (
        [snapshot_tombstone_statement(wh, table, manifest, batch_id, loaded_at)] if manifest.get("snapshot") else []
    )
    return {
        "begin": [lock] if lock else [],
        "check": [f"SELECT 1 FROM {wh.raw_name(LOAD_LOG)} WHERE batch_id = {literal(batch_id)}"],
        "stage": [wh.create_stage_statement(table), *wh.fill_stage_statements(table, manifest, folder)],
        "after_stage": after_stage_statements(wh, table, manifest),
        "bounds": [bounds_statement(wh, table)],
        "insert": [
            insert_statement(wh, table, batch_id, loaded_at, dedupe=manifest.get("dedupe", True), bounds=bounds),
            *snapshot,
        ],
        "log": [log_statement(wh, manifest, wh.store.uri(layout.batch_manifest(folder)), inserted, loaded_at)],
        "end": [f"DROP TABLE {wh.stage_name(table)}"],
    }
