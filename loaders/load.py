"""Load: every published batch into its append-only raw table, exactly once (contract 4).

For each batch (a folder with `_manifest.json`) not yet in the load log, in batch order:
verify the parts against the manifest, then in ONE transaction: stage the parts, insert the
rows into the raw table with the batch id and load time, and record the batch in the load log.
A crash anywhere before COMMIT leaves nothing; a batch already in the log is skipped.

Rows are versions: a row whose (primary key, cursor) is already in the raw table is not
inserted again. That is what makes the extract's lookback window and a repeated historical
extract harmless: re-running extract and load with no source change adds no row. dbt's
staging views pick the latest version per key (contract 5).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from .extract import MANIFEST, MANIFEST_VERSION
from .store import ObjectStore, StoreError
from .tables import BATCH_ID_COLUMN, LOADED_AT_COLUMN, Table
from .warehouse import LOAD_LOG, Warehouse, literal, quote, sequence

log = logging.getLogger(__name__)
BATCH_ID = re.compile(r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{6}$")


class LoadError(RuntimeError):
    """A batch cannot be loaded; the message names the batch, the file and the reason."""


@dataclass
class LoadReport:
    table: str
    batch_id: str
    mode: str
    status: str  # loaded | skipped
    rows_in_batch: int = 0
    rows_inserted: int = 0
    seconds: float = 0.0


def list_batches(store: ObjectStore, table: Table) -> list[tuple[str, str]]:
    """(batch id, folder) of every published batch of a table, oldest first."""
    found = []
    for path in store.glob(f"{table.name}/*/batch=*/{MANIFEST}"):
        folder = path.rsplit("/", 1)[0]
        mode = folder.split("/")[-2]
        if mode not in ("historical", "current"):
            continue
        found.append((folder.rsplit("batch=", 1)[1], folder))
    return sorted(found)


def read_manifest(store: ObjectStore, table: Table, folder: str) -> dict:
    manifest = store.read_json(f"{folder}/{MANIFEST}")
    where = store.uri(f"{folder}/{MANIFEST}")
    if manifest.get("version") != MANIFEST_VERSION or manifest.get("table") != table.name:
        raise LoadError(f"{where}: not a version-{MANIFEST_VERSION} manifest of table {table.name!r}")
    if not BATCH_ID.match(str(manifest.get("batch_id", ""))):
        raise LoadError(f"{where}: invalid batch id {manifest.get('batch_id')!r}")
    declared = list(table.column_names)
    extracted = [c["name"] for c in manifest.get("columns", [])]
    if extracted != declared:
        raise LoadError(
            f"{where}: the batch has columns {extracted} but table {table.name!r} declares {declared}; "
            "re-extract it or migrate the raw table"
        )
    return manifest


def verify_parts(store: ObjectStore, folder: str, manifest: dict, checksums: bool) -> None:
    """Every part is there with the size (and checksum) the manifest promises."""
    for part in manifest["parts"]:
        path = f"{folder}/{part['path']}"
        try:
            size = store.info(path).size
        except StoreError as exc:
            raise LoadError(f"batch {manifest['batch_id']} of {manifest['table']!r}: {exc}") from None
        if size != part["bytes"]:
            raise LoadError(
                f"batch {manifest['batch_id']} of {manifest['table']!r}: part {store.uri(path)} has "
                f"{size} bytes, the manifest says {part['bytes']}; nothing was loaded"
            )
        if checksums and store.sha256(path) != part["sha256"]:
            raise LoadError(
                f"batch {manifest['batch_id']} of {manifest['table']!r}: part {store.uri(path)} is "
                "corrupted (its SHA-256 differs from the manifest); nothing was loaded"
            )


def insert_statement(wh: Warehouse, table: Table, batch_id: str, loaded_at: datetime) -> str:
    """New row versions only: (primary key, cursor) not yet in the raw table."""
    cols = [quote(c) for c in table.column_names]
    match = " AND ".join(f"r.{quote(k)} = s.{quote(k)}" for k in (*table.primary_key, table.cursor))
    return (
        f"INSERT INTO {wh.raw_name(table.name)} ({', '.join(cols)}, {quote(BATCH_ID_COLUMN)}, {quote(LOADED_AT_COLUMN)})\n"
        f"SELECT {', '.join('s.' + c for c in cols)}, {literal(batch_id)}, "
        f"CAST({literal(loaded_at.strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMP)\n"
        f"FROM {wh.stage_name(table)} AS s\n"
        f"WHERE NOT EXISTS (SELECT 1 FROM {wh.raw_name(table.name)} AS r WHERE {match})"
    )


def log_statement(wh: Warehouse, manifest: dict, uri: str, inserted_sql: str, loaded_at: datetime) -> str:
    cursor = manifest["cursor"]
    values = [
        literal(manifest["batch_id"]), literal(manifest["table"]), literal(manifest["mode"]), literal(uri),
        literal(int(manifest["row_count"])), inserted_sql,
        literal(cursor["lower"].replace("T", " ") if cursor["lower"] else None),
        literal(cursor["upper"].replace("T", " ")),
        literal(loaded_at.strftime("%Y-%m-%d %H:%M:%S.%f")),
    ]
    return (
        f"INSERT INTO {wh.raw_name(LOAD_LOG)} (batch_id, table_name, mode, manifest_uri, rows_in_batch, "
        "rows_inserted, cursor_lower, cursor_upper, loaded_at)\nVALUES (" + ", ".join(values) + ")"
    )


def batch_statements(wh: Warehouse, table: Table, manifest: dict, folder: str,
                     loaded_at: datetime) -> dict[str, list[str]]:
    """Every statement of one batch's load, in order, as the warehouse would receive them."""
    batch_id = manifest["batch_id"]
    inserted = (
        f"(SELECT count(*) FROM {wh.raw_name(table.name)} "
        f"WHERE {quote(BATCH_ID_COLUMN)} = {literal(batch_id)})"
    )
    return {
        "begin": sequence([wh.lock_statement()]),
        "check": [f"SELECT 1 FROM {wh.raw_name(LOAD_LOG)} WHERE batch_id = {literal(batch_id)}"],
        "stage": [wh.create_stage_statement(table), *wh.fill_stage_statements(table, manifest, folder)],
        "insert": [insert_statement(wh, table, batch_id, loaded_at)],
        "log": [log_statement(wh, manifest, wh.store.uri(f"{folder}/{MANIFEST}"), inserted, loaded_at)],
        "end": [f"DROP TABLE {wh.stage_name(table)}"],
    }


def load_batch(wh: Warehouse, table: Table, folder: str) -> LoadReport:
    started = time.perf_counter()
    manifest = read_manifest(wh.store, table, folder)
    batch_id = manifest["batch_id"]
    if wh.execute(f"SELECT 1 FROM {wh.raw_name(LOAD_LOG)} WHERE batch_id = {literal(batch_id)}"):
        return LoadReport(table.name, batch_id, manifest["mode"], "skipped", manifest["row_count"])
    verify_parts(wh.store, folder, manifest, checksums=wh.engine != "redshift")
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    steps = batch_statements(wh, table, manifest, folder, loaded_at)
    with wh.transaction():
        for sql in steps["begin"]:
            wh.execute(sql)
        if wh.execute(steps["check"][0]):  # another loader committed it meanwhile
            return LoadReport(table.name, batch_id, manifest["mode"], "skipped", manifest["row_count"])
        wh.execute(steps["stage"][0])
        try:
            wh.fill_stage(table, manifest, folder)
        except Exception as exc:
            wh.rollback()
            detail = wh.copy_error_detail() if wh.engine == "redshift" else ""
            raise LoadError(
                f"batch {batch_id} of {table.name!r} ({wh.store.uri(folder)}) could not be staged: "
                f"{detail or _first_line(exc)}; nothing was loaded"
            ) from None
        for sql in steps["insert"] + steps["log"] + steps["end"]:
            wh.execute(sql)
        inserted = wh.execute(
            f"SELECT rows_inserted FROM {wh.raw_name(LOAD_LOG)} WHERE batch_id = {literal(batch_id)}"
        )[0][0]
    return LoadReport(table.name, batch_id, manifest["mode"], "loaded", manifest["row_count"],
                      int(inserted), time.perf_counter() - started)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def ensure_tables(wh: Warehouse, tables: list[Table]) -> None:
    for table in tables:
        for sql in wh.create_statements(table):
            wh.execute(sql)


def load_tables(wh: Warehouse, tables: list[Table],
                progress: Callable[[LoadReport], None] | None = None,
                declared: list[Table] | None = None) -> list[LoadReport]:
    """Load every pending batch of the given tables; return one report per batch seen.

    Every declared raw table is created (empty) if missing, so dbt always finds its sources.
    """
    ensure_tables(wh, declared or tables)
    reports = []
    for table in tables:
        for _, folder in list_batches(wh.store, table):
            report = load_batch(wh, table, folder)
            if progress:
                progress(report)
            reports.append(report)
    return reports
