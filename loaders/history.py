"""The run history (contract 14): one row per unit of every stage run, in `raw._run_history`.

Every stage wraps each unit of work in `Run.unit(...)` (loaders/runs.py); the observers here
persist each unit's outcome when it starts (status `running`) and when it ends. A unit that never
ends (a killed process, a lost machine) keeps its `running` row: `dwh status` calls it
unfinished once it is older than `UNFINISHED_AFTER`, never a success.

Where the records go depends on where the stage runs:

* **load** and **build** hold the warehouse, so they write the table directly
  (`WarehouseHistory`). A load writes the unit's progress inside each batch's load
  transaction (`write_unit` in `loaders/load/loader.py`'s hook): the batch and its line in the
  history commit together. A build writes its final row in the transaction that records the
  build in `raw._build_log`, after dbt has run.
* **extract**, **funnel convert** and **source load** may run where the warehouse is not
  reachable (on AWS the extract job runs in the source database's VPC) and must not take the
  DuckDB lock that a load needs, so they write small JSON records to the object store
  (`StoreHistory`, keys `state/runs/<run id>/<seq>.started|ended.json`, loaders/layout.py).
  The next `dwh load` (or `dwh build`) ingests them into the table in one transaction and
  deletes them; `dwh status` also reads the ones not ingested yet.

Rows are keyed by (run_id, unit_seq); every write is an insert-if-missing followed by an update,
so a record ingested twice, or a start record read after its end, changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from . import layout
from .runs import STATUSES, Run, UnitOutcome, utcnow
from .store import ObjectStore
from .warehouses import Warehouse, literal, quote, timestamp

log = logging.getLogger("loaders.history")

HISTORY = "_run_history"
UNFINISHED_AFTER = timedelta(hours=3)
"""A unit still `running` after this long was killed (the Glue jobs time out after 1-2 hours)."""
BATCH_IDS_LIMIT = 65_535  # Redshift's longest VARCHAR
ERROR_LIMIT = 1_024
COLUMNS = (
    "run_id",
    "unit_seq",
    "stage",
    "unit_name",
    "status",
    "started_at",
    "finished_at",
    "row_count",
    "byte_count",
    "batch_ids",
    "error_message",
    "recorded_at",
)
"""The table's columns, in order (models/staging/pipeline/_pipeline__sources.yml documents them)."""


def create_statements(wh: Warehouse) -> list[str]:
    """The raw schema and the run-history table, if missing (the same DDL on every engine)."""
    return [
        f"CREATE SCHEMA IF NOT EXISTS {quote(wh.schema)}",
        f"CREATE TABLE IF NOT EXISTS {wh.raw_name(HISTORY)} (\n"
        "    run_id VARCHAR(64) NOT NULL,\n"
        "    unit_seq INTEGER NOT NULL,\n"
        "    stage VARCHAR(32) NOT NULL,\n"
        "    unit_name VARCHAR(512) NOT NULL,\n"
        "    status VARCHAR(16) NOT NULL,\n"
        "    started_at TIMESTAMP NOT NULL,\n"
        "    finished_at TIMESTAMP,\n"
        "    row_count BIGINT NOT NULL,\n"
        "    byte_count BIGINT NOT NULL,\n"
        f"    batch_ids VARCHAR({BATCH_IDS_LIMIT}) NOT NULL,\n"
        f"    error_message VARCHAR({ERROR_LIMIT}),\n"
        "    recorded_at TIMESTAMP NOT NULL,\n"
        "    PRIMARY KEY (run_id, unit_seq)\n"
        ")",
    ]


def ensure_history(wh: Warehouse) -> None:
    for sql in create_statements(wh):
        wh.execute(sql)


def _batch_ids(ids: list[str]) -> str:
    """Space-separated batch ids, cut to fit the column (with how many were left out)."""
    text = " ".join(ids)
    if len(text) <= BATCH_IDS_LIMIT:
        return text
    kept: list[str] = []
    for batch_id in ids:
        if len(" ".join([*kept, batch_id])) > BATCH_IDS_LIMIT - 20:
            break
        kept.append(batch_id)
    return " ".join(kept) + f" (+{len(ids) - len(kept)} more)"


def _error(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 3] + "..."


def upsert_statements(wh: Warehouse, o: UnitOutcome, recorded_at: datetime, overwrite: bool = True) -> list[str]:
    """Insert the unit's row if it is missing, then (with `overwrite`) set it to the outcome as
    it is now. A store's start record is ingested without `overwrite`: it never undoes its end."""
    name = wh.raw_name(HISTORY)
    key = f"run_id = {literal(o.run_id)} AND unit_seq = {int(o.seq)}"
    values = {
        "run_id": literal(o.run_id),
        "unit_seq": str(int(o.seq)),
        "stage": literal(o.stage),
        "unit_name": literal(o.unit[:512]),
        "status": literal(o.status),
        "started_at": timestamp(o.started_at),
        "finished_at": timestamp(o.finished_at) if o.finished_at else "CAST(NULL AS TIMESTAMP)",
        "row_count": str(int(o.rows)),
        "byte_count": str(int(o.bytes)),
        "batch_ids": literal(_batch_ids(o.batch_ids)),
        "error_message": literal(_error(o.error)),
        "recorded_at": timestamp(recorded_at),
    }
    insert = (
        f"INSERT INTO {name} ({', '.join(COLUMNS)})\n"
        f"SELECT {', '.join(values[c] for c in COLUMNS)}\n"
        f"WHERE NOT EXISTS (SELECT 1 FROM {name} WHERE {key})"
    )
    if not overwrite:
        return [insert]
    changed = ("status", "finished_at", "row_count", "byte_count", "batch_ids", "error_message", "recorded_at")
    update = f"UPDATE {name} SET " + ", ".join(f"{c} = {values[c]}" for c in changed) + f"\nWHERE {key}"
    return [insert, update]


def write_unit(wh: Warehouse, o: UnitOutcome, overwrite: bool = True) -> None:
    """Write one unit's row inside the caller's transaction (the load's, the build's)."""
    for sql in upsert_statements(wh, o, utcnow(), overwrite):
        wh.execute(sql)


class WarehouseHistory:
    """A Run observer that writes each unit to the warehouse's run history as it starts and ends.

    Give it an open warehouse (`wh`), or a `connect` factory for stages that must not hold the
    warehouse between writes (a build: dbt opens the DuckDB file itself). A write that fails is
    logged, never raised: the run history must not turn a unit's own error into another one.
    """

    def __init__(
        self, wh: Warehouse | None = None, connect: Callable[[], AbstractContextManager[Warehouse]] | None = None
    ):
        if (wh is None) == (connect is None):
            raise ValueError("give an open warehouse or a way to connect, not both")
        self.wh, self.connect = wh, connect
        self._ready = False
        self._lock = threading.Lock()  # units of tables loading at once share `wh`: one write at a time

    def __call__(self, o: UnitOutcome) -> None:
        with self._lock:
            self._record(o)

    def _record(self, o: UnitOutcome) -> None:
        try:
            if self.wh is not None:
                self._write(self.wh, o)
            else:
                assert self.connect is not None
                with self.connect() as wh:
                    self._write(wh, o)
        except Exception as exc:
            log.warning("run history: could not record %s %s (%s): %s", o.stage, o.unit, o.status, exc)

    def _write(self, wh: Warehouse, o: UnitOutcome) -> None:
        if not self._ready:
            ensure_history(wh)
            self._ready = True
        with wh.transaction():
            write_unit(wh, o, overwrite=o.status != "running")


def record_json(o: UnitOutcome) -> dict[str, Any]:
    """A unit's outcome as the JSON record the store keeps."""
    doc = asdict(o)
    doc["started_at"] = o.started_at.isoformat()
    doc["finished_at"] = o.finished_at.isoformat() if o.finished_at else None
    return doc


def outcome_from_json(doc: dict[str, Any]) -> UnitOutcome:
    """The outcome a store record describes; ValueError for a record that is not one."""
    try:
        status = doc["status"]
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        return UnitOutcome(
            run_id=str(doc["run_id"]),
            stage=doc["stage"],
            unit=str(doc["unit"]),
            started_at=datetime.fromisoformat(doc["started_at"]),
            finished_at=datetime.fromisoformat(doc["finished_at"]) if doc.get("finished_at") else None,
            status=status,
            rows=int(doc.get("rows") or 0),
            bytes=int(doc.get("bytes") or 0),
            batch_ids=[str(b) for b in doc.get("batch_ids") or []],
            error=doc.get("error"),
            seq=int(doc["seq"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a run record ({exc})") from None


class StoreHistory:
    """A Run observer that keeps each unit's start and end as JSON records in the object store.

    For the stages that run apart from the warehouse; `ingest_records` moves them into the
    warehouse's run history. A write that fails is logged, never raised.
    """

    def __init__(self, store: ObjectStore):
        self.store = store

    def __call__(self, o: UnitOutcome) -> None:
        phase = "started" if o.status == "running" else "ended"
        try:
            self.store.write_json(layout.run_record(o.run_id, o.seq, phase), record_json(o))
        except Exception as exc:
            log.warning("run history: could not record %s %s (%s) in the store: %s", o.stage, o.unit, o.status, exc)


def store_records(store: ObjectStore, paths: list[str] | None = None) -> dict[str, UnitOutcome]:
    """The store's run records not ingested yet, one per unit (its end if written, else its
    start), by record path. Unreadable records are skipped with a warning."""
    by_unit: dict[tuple[str, int], tuple[str, UnitOutcome]] = {}
    for path in sorted(store.glob(layout.run_records_glob()) if paths is None else paths):
        try:
            o = outcome_from_json(store.read_json(path))
        except Exception as exc:
            log.warning("run history: skipping %s: %s", store.uri(path), exc)
            continue
        key = (o.run_id, o.seq)
        if key not in by_unit or path.endswith(".ended.json"):
            by_unit[key] = (path, o)
    return dict(by_unit.values())


def ingest_records(wh: Warehouse) -> int:
    """Move the store's run records into the warehouse's run history: one transaction, then the
    records are deleted. Returns how many units were written. Safe to repeat (upserts). A
    failure is logged and leaves the records for the next load: the history never stops a load."""
    try:
        return _ingest(wh)
    except Exception as exc:
        log.warning("run history: could not ingest the store's run records: %s", exc)
        return 0


def _ingest(wh: Warehouse) -> int:
    paths = sorted(wh.store.glob(layout.run_records_glob()))
    if not paths:
        return 0
    records = store_records(wh.store, paths)
    ensure_history(wh)
    with wh.transaction():
        for o in records.values():
            write_unit(wh, o, overwrite=o.status != "running")
    for path in paths:  # the started and ended records alike (a newer one stays for next time)
        if path in records or _phase_covered(path, records):
            wh.store.delete(path)
    return len(records)


def _phase_covered(path: str, records: dict[str, UnitOutcome]) -> bool:
    """A start record whose end record was just ingested."""
    return path.endswith(".started.json") and path.replace(".started.json", ".ended.json") in records


@contextmanager
def recording(run: Run, observer: Callable[[UnitOutcome], None]) -> Iterator[None]:
    """Persist the units that start in this block with `observer`."""
    run.observers.append(observer)
    try:
        yield
    finally:
        run.observers.remove(observer)


# -- reading ---------------------------------------------------------------------------------
def has_history(wh: Warehouse) -> bool:
    return wh.has_table(HISTORY)


def latest_units(wh: Warehouse) -> list[dict[str, Any]]:
    """The latest row of every (stage, unit_name): what each unit did last."""
    name = wh.raw_name(HISTORY)
    cols = ", ".join(f"h.{c}" for c in COLUMNS)
    return _dicts(
        wh.execute(
            f"SELECT {cols} FROM {name} AS h INNER JOIN (\n"
            f"    SELECT stage, unit_name, max(started_at) AS started_at FROM {name} GROUP BY stage, unit_name\n"
            ") AS latest ON h.stage = latest.stage AND h.unit_name = latest.unit_name "
            "AND h.started_at = latest.started_at"
        )
    )


def unit_summary(wh: Warehouse) -> dict[tuple[str, str], dict[str, datetime]]:
    """(stage, unit_name) -> `success`: when its latest successful run ended (`skipped`, nothing
    to do, counts), `success_started`: when that run started, `succeeded`: when its latest run
    that did something (`succeeded`) ended."""
    rows = wh.execute(
        f"SELECT stage, unit_name, status, max(started_at), max(finished_at) FROM {wh.raw_name(HISTORY)} "
        "WHERE status IN ('succeeded', 'skipped') GROUP BY stage, unit_name, status"
    )
    out: dict[tuple[str, str], dict[str, datetime]] = {}
    for stage, unit, status, started, finished in rows:
        entry = out.setdefault((stage, unit), {})
        if finished is not None and ("success" not in entry or finished > entry["success"]):
            entry["success"] = finished
        if started is not None and ("success_started" not in entry or started > entry["success_started"]):
            entry["success_started"] = started
        if status == "succeeded" and finished is not None:
            entry["succeeded"] = finished
    return out


def failed_batches(wh: Warehouse) -> list[dict[str, Any]]:
    """Units that failed or were set aside naming batches (`dwh status` keeps the batches not
    loaded since)."""
    cols = ", ".join(COLUMNS)
    return _dicts(
        wh.execute(
            f"SELECT {cols} FROM {wh.raw_name(HISTORY)} WHERE status IN ('failed', 'set_aside') "
            "AND batch_ids <> '' ORDER BY started_at"
        )
    )


def _dicts(rows: list[tuple]) -> list[dict[str, Any]]:
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def as_row(o: UnitOutcome) -> dict[str, Any]:
    """An outcome in the shape of a run-history row (for records not ingested yet)."""
    return {
        "run_id": o.run_id,
        "unit_seq": o.seq,
        "stage": o.stage,
        "unit_name": o.unit,
        "status": o.status,
        "started_at": o.started_at,
        "finished_at": o.finished_at,
        "row_count": o.rows,
        "byte_count": o.bytes,
        "batch_ids": " ".join(o.batch_ids),
        "error_message": o.error,
        "recorded_at": o.finished_at or o.started_at,
    }
