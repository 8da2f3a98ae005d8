"""The object store's layout: every key the pipeline reads or writes is spelled here, once.

Paths are relative to the store's root (a local folder, or `s3://bucket/prefix`), with '/'
separators. The default store of the embedded pipeline is `data/store/`:

    olist/<table>/historical|current/batch=<id>/   one extract of one table (a batch)
        part-00000.parquet ...                      the rows
        _copy.manifest                              Redshift's COPY manifest
        _manifest.json                              written last: its presence publishes the batch
    olist/<table>/_state.json                       the table's watermark (and binlog position)
    landing/funnel/<file>.csv                       funnel files as the vendor drops them
    lake/funnel_events/year=<y>/month=<m>/<stem>.parquet
                                                    the converted funnel lake (Glue/Spectrum table)
    rejects/funnel/<stem>.csv                       rows a conversion refused, with line and reason
    state/funnel/<stem>.json                        a conversion's marker: what was converted, when
    state/runs/<run id>/<seq>.started|ended.json    run-history records of the stages that run
                                                    apart from the warehouse (extract, funnel,
                                                    source load); the next load ingests them
    tmp/funnel/<run>/                               a conversion's files before they are published
    _trigger/<sha256>                               the AWS trigger's claimed events

This module imports nothing outside the standard library: the trigger Lambda ships it as is
(loaders/aws/package.py).
"""

from __future__ import annotations

import re
from typing import Literal, get_args

Mode = Literal["historical", "current"]
"""A batch's mode: `historical` (every row of the table) or `current` (a cursor window)."""
MODES: tuple[Mode, ...] = get_args(Mode)

SOURCE = "olist"  # the dbt source name of the declared tables, and their prefix in the store
MANIFEST = "_manifest.json"
COPY_MANIFEST = "_copy.manifest"
STATE_FILE = "_state.json"

LANDING_FUNNEL = "landing/funnel"
FUNNEL_LAKE = "lake/funnel_events"
FUNNEL_REJECTS = "rejects/funnel"
FUNNEL_MARKERS = "state/funnel"
FUNNEL_TMP = "tmp/funnel"
RUN_RECORDS = "state/runs"
TRIGGER_MARKERS = "_trigger"

_BATCH_ID = r"[0-9]{8}T[0-9]{12}Z-[0-9a-f]{6}"
BATCH_ID = re.compile(rf"^{_BATCH_ID}$")
"""A batch id: the UTC time of the extract to the microsecond, then 6 random hex digits."""
MANIFEST_KEY = re.compile(
    rf"{SOURCE}/(?P<table>[a-z][a-z0-9_]*)/(?P<mode>{'|'.join(MODES)})/batch=(?P<batch_id>[^/]+)/{re.escape(MANIFEST)}"
)
"""A batch manifest's key (relative to the store root)."""
FUNNEL_LANDING_KEY = re.compile(rf"{LANDING_FUNNEL}/[^/]+\.csv", re.IGNORECASE)
"""A funnel file's key in the landing area."""
_PARTITION = re.compile(r"year=(\d+)/month=(\d+)/")


def table_prefix(table: str) -> str:
    """Everything the store holds for one declared table."""
    return f"{SOURCE}/{table}"


def batch_dir(table: str, mode: str, batch_id: str) -> str:
    """The folder of one batch: `olist/<table>/<mode>/batch=<id>`."""
    return f"{table_prefix(table)}/{mode}/batch={batch_id}"


def batch_manifest(folder: str) -> str:
    return f"{folder}/{MANIFEST}"


def batch_copy_manifest(folder: str) -> str:
    return f"{folder}/{COPY_MANIFEST}"


def batch_part(folder: str, index: int) -> str:
    return f"{folder}/part-{index:05d}.parquet"


def manifest_glob(table: str) -> str:
    """A glob for every published batch manifest of a table, all modes."""
    return f"{table_prefix(table)}/*/batch=*/{MANIFEST}"


def parse_batch_folder(folder: str) -> tuple[str, str] | None:
    """(mode, batch id) of a batch folder, or None when the folder is not one."""
    *_, mode, leaf = folder.split("/")
    if mode not in MODES or not leaf.startswith("batch="):
        return None
    return mode, leaf[len("batch=") :]


def state_path(table: str) -> str:
    """The table's watermark state."""
    return f"{table_prefix(table)}/{STATE_FILE}"


def funnel_landing(name: str) -> str:
    return f"{LANDING_FUNNEL}/{name}"


def partition_name(year: int, month: int) -> str:
    """A lake partition's Hive-style name: `year=<y>/month=<m>`."""
    return f"year={year}/month={month}"


def partition_file(prefix: str, year: int, month: int, stem: str) -> str:
    """A source file's Parquet file of one month, under `prefix` (the lake, or a conversion's tmp)."""
    return f"{prefix}/{partition_name(year, month)}/{stem}.parquet"


def funnel_lake_file(year: int, month: int, stem: str) -> str:
    return partition_file(FUNNEL_LAKE, year, month, stem)


def funnel_lake_glob() -> str:
    return f"{FUNNEL_LAKE}/year=*/month=*/*.parquet"


def parse_partition(path: str) -> tuple[int, int] | None:
    """(year, month) of a lake file's partition, or None."""
    match = _PARTITION.search(path)
    return (int(match[1]), int(match[2])) if match else None


def funnel_rejects(stem: str) -> str:
    return f"{FUNNEL_REJECTS}/{stem}.csv"


def funnel_marker(stem: str) -> str:
    return f"{FUNNEL_MARKERS}/{stem}.json"


def funnel_markers_glob() -> str:
    return f"{FUNNEL_MARKERS}/*.json"


def funnel_tmp(run: str) -> str:
    return f"{FUNNEL_TMP}/{run}"


RUN_RECORD_PHASES = ("started", "ended")


def run_record(run_id: str, seq: int, phase: str) -> str:
    """One unit's run-history record: `started` when it begins, `ended` when it ends (both kept
    until the next load ingests them into the warehouse's run history)."""
    if phase not in RUN_RECORD_PHASES:
        raise ValueError(f"unknown run record phase {phase!r}")
    return f"{RUN_RECORDS}/{run_id}/{seq:05d}.{phase}.json"


def run_records_glob() -> str:
    return f"{RUN_RECORDS}/*/*.json"


def trigger_marker(name: str) -> str:
    return f"{TRIGGER_MARKERS}/{name}"
