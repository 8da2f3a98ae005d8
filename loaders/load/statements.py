"""The SQL of one batch's load, the same for every warehouse but the staging step."""

from __future__ import annotations

from datetime import datetime

from .. import layout
from ..declarations import BATCH_ID_COLUMN, LOADED_AT_COLUMN, Table
from ..warehouses import LOAD_LOG, Warehouse, literal, quote


def insert_statement(wh: Warehouse, table: Table, batch_id: str, loaded_at: datetime) -> str:
    """New row versions only: (primary key, cursor) not yet in the raw table."""
    cols = [quote(c) for c in table.column_names]
    match = " AND ".join(f"r.{quote(k)} = s.{quote(k)}" for k in (*table.primary_key, table.cursor))
    extra = f"{quote(BATCH_ID_COLUMN)}, {quote(LOADED_AT_COLUMN)}"
    return (
        f"INSERT INTO {wh.raw_name(table.name)} ({', '.join(cols)}, {extra})\n"
        f"SELECT {', '.join('s.' + c for c in cols)}, {literal(batch_id)}, "
        f"CAST({literal(loaded_at.strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMP)\n"
        f"FROM {wh.stage_name(table)} AS s\n"
        f"WHERE NOT EXISTS (SELECT 1 FROM {wh.raw_name(table.name)} AS r WHERE {match})"
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
    wh: Warehouse, table: Table, manifest: dict, folder: str, loaded_at: datetime
) -> dict[str, list[str]]:
    """Every statement of one batch's load, in order, as the warehouse would receive them."""
    batch_id = manifest["batch_id"]
    inserted = f"(SELECT count(*) FROM {wh.raw_name(table.name)} WHERE {quote(BATCH_ID_COLUMN)} = {literal(batch_id)})"
    lock = wh.lock_statement()
    return {
        "begin": [lock] if lock else [],
        "check": [f"SELECT 1 FROM {wh.raw_name(LOAD_LOG)} WHERE batch_id = {literal(batch_id)}"],
        "stage": [wh.create_stage_statement(table), *wh.fill_stage_statements(table, manifest, folder)],
        "insert": [insert_statement(wh, table, batch_id, loaded_at)],
        "log": [log_statement(wh, manifest, wh.store.uri(layout.batch_manifest(folder)), inserted, loaded_at)],
        "end": [f"DROP TABLE {wh.stage_name(table)}"],
    }
