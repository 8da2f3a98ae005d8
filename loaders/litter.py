"""Litter: what killed runs leave in the store, removed by a later run once it is old enough.

A killed extract leaves a batch folder without `_manifest.json` (the loader never sees it: it is
not a batch), a killed funnel conversion leaves `tmp/funnel/<run>/`, and a write killed half-way
leaves a `*.tmp-<hex>` file beside its target (loaders/store.py writes under such a name, then
renames). `dwh run` removes those whose newest object is older than `DWH_LITTER_AGE_HOURS`
(default 6) and says how many it removed. It never touches:

- a folder with `_manifest.json` (a published batch) other than its stray `*.tmp-*` files;
- a batch folder named by a table's resume checkpoint (`_state.json`, loaders/extract/resume.py):
  a historical extract that a later run continues, however old;
- anything written to within the safe age: an extract or conversion still running writes its
  current file continuously.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import layout
from .store import ObjectStore

log = logging.getLogger("loaders.litter")
_TMP_FILE = re.compile(r"\.tmp-[0-9a-f]{8}$")


@dataclass
class LitterReport:
    """What one sweep removed (store keys, relative to the root) and the age it used."""

    age_hours: float
    batch_folders: list[str] = field(default_factory=list)
    funnel_tmp: list[str] = field(default_factory=list)
    tmp_files: list[str] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return len(self.batch_folders) + len(self.funnel_tmp) + len(self.tmp_files)

    def describe(self) -> str:
        """One line for the run's report."""
        if not self.removed:
            return f"litter: nothing older than {self.age_hours:g}h to remove"
        return (
            f"litter older than {self.age_hours:g}h removed: {len(self.batch_folders)} unpublished batch "
            f"folder(s), {len(self.funnel_tmp)} funnel temporary folder(s), {len(self.tmp_files)} "
            "temporary file(s)"
        )


def _modified(info: dict[str, Any]) -> float:
    """An object's modification time, epoch seconds (local: mtime; S3: LastModified)."""
    for name in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
    return time.time()  # unknown: treat as new, never remove it


def _listing(store: ObjectStore, prefix: str) -> dict[str, dict[str, Any]]:
    """Every object (and, locally, every folder) under `prefix`, by relative key."""
    if not store.exists(prefix):
        return {}
    store.fs.invalidate_cache()
    found = store.fs.find(store.full(prefix), detail=True, withdirs=not store.is_s3)
    return {store.relative(path): info for path, info in found.items()}


def resume_folders(store: ObjectStore) -> set[str]:
    """Batch folders that a table's resume checkpoint names (never litter)."""
    from .extract.resume import CHECKPOINT

    kept = set()
    for path in store.glob(f"{layout.SOURCE}/*/{layout.STATE_FILE}"):
        try:
            checkpoint = store.read_json(path).get(CHECKPOINT)
        except Exception:  # a broken state file is the extract's problem, not the sweeper's
            continue
        if isinstance(checkpoint, dict) and checkpoint.get("folder"):
            kept.add(str(checkpoint["folder"]))
    return kept


def sweep(store: ObjectStore, age_hours: float, now: float | None = None) -> LitterReport:
    """Remove the litter older than `age_hours` (see the module doc); return what was removed."""
    cutoff = (now if now is not None else time.time()) - age_hours * 3600
    report = LitterReport(age_hours)
    keep = resume_folders(store)
    newest: dict[str, float] = defaultdict(float)
    published: set[str] = set()
    for key, info in _listing(store, layout.SOURCE).items():
        folder = _batch_folder(key)
        if folder is None:
            if _TMP_FILE.search(key) and info.get("type") != "directory" and _modified(info) < cutoff:
                report.tmp_files.append(key)
            continue
        newest[folder] = max(newest[folder], _modified(info))
        if key == layout.batch_manifest(folder):
            published.add(folder)
        elif _TMP_FILE.search(key) and _modified(info) < cutoff:
            report.tmp_files.append(key)  # in a published folder only (else the folder goes)
    for folder, modified in sorted(newest.items()):
        if folder not in published and folder not in keep and modified < cutoff:
            report.batch_folders.append(folder)
    report.tmp_files = [k for k in report.tmp_files if _batch_folder(k) not in report.batch_folders]
    runs: dict[str, float] = defaultdict(float)
    for key, info in _listing(store, layout.FUNNEL_TMP).items():
        run = "/".join(key.split("/")[:3])  # tmp/funnel/<run>
        if run != layout.FUNNEL_TMP:
            runs[run] = max(runs[run], _modified(info))
    report.funnel_tmp = [run for run, modified in sorted(runs.items()) if modified < cutoff]
    for key in [*report.batch_folders, *report.funnel_tmp, *report.tmp_files]:
        log.info("removing litter %s", store.uri(key))
        store.delete(key)
    return report


def _batch_folder(key: str) -> str | None:
    """The batch folder `olist/<table>/<mode>/batch=<id>` that `key` is (or is inside), or None."""
    parts = key.split("/")
    if len(parts) < 4 or parts[2] not in layout.MODES or not parts[3].startswith("batch="):
        return None
    return "/".join(parts[:4])
