"""The batch manifest: the contract between extract and load (docs/architecture.md, contract 2).

`_manifest.json` is written last in a batch folder; its presence publishes the batch. It lists
every part with its rows, bytes and SHA-256, the column schema, the cursor range and the mode.
Beside it, `_copy.manifest` is Redshift's COPY manifest of the same parts (with
`content_length`, which COPY needs for Parquet).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from . import layout
from .declarations import Column, LogicalType, Table, TypeDeclarationError
from .store import ObjectStore

MANIFEST_VERSION = 2
"""The version extracts write. 2 (issue 18): the parts no longer hold `_row_hash`, the load
computes it; a loader that knows only version 1 would stage such a batch with NULL hashes, so it
refuses it instead (one line, the batch is retried once the loader is upgraded)."""
READABLE_VERSIONS = (1, 2)
"""The versions this loader reads: 1 (parts with `_row_hash`, or without any change column
before contract 8) and 2. The manifest's `change_columns` says which columns the parts hold."""


class ManifestError(RuntimeError):
    """A manifest is not what the loader can trust; the message names it and why."""


@dataclass(frozen=True)
class Part:
    path: str  # relative to the store root
    rows: int
    bytes: int
    sha256: str


def logical_name(t: LogicalType) -> str:
    """A logical type as the declarations spell it (`decimal(10,2)`, `char(32)`, `text`)."""
    if t.kind == "decimal":
        return f"decimal({t.length},{t.scale})"
    return f"{t.kind}({t.length})" if t.length else t.kind


def write_manifests(store: ObjectStore, folder: str, manifest: dict[str, Any], parts: list[Part]) -> None:
    """Redshift's COPY manifest first, then ours: its presence publishes the batch."""
    store.write_json(
        layout.batch_copy_manifest(folder),
        {
            "entries": [
                {"url": store.uri(p.path), "mandatory": True, "meta": {"content_length": p.bytes}} for p in parts
            ]
        },
    )
    store.write_json(layout.batch_manifest(folder), manifest)


def read_manifest(store: ObjectStore, table: Table, folder: str) -> dict[str, Any]:
    """The manifest of the batch in `folder`, checked: version, table, batch id (its columns
    are checked by `batch_table`, after the load log: a batch already loaded is skipped whatever
    its columns).

    Raises ManifestError naming the manifest's URI.
    """
    manifest = store.read_json(layout.batch_manifest(folder))
    where = store.uri(layout.batch_manifest(folder))
    if manifest.get("version") not in READABLE_VERSIONS or manifest.get("table") != table.name:
        versions = " or ".join(str(v) for v in READABLE_VERSIONS)
        raise ManifestError(f"{where}: not a version-{versions} manifest of table {table.name!r}")
    if not layout.BATCH_ID.match(str(manifest.get("batch_id", ""))):
        raise ManifestError(f"{where}: invalid batch id {manifest.get('batch_id')!r}")
    return manifest


def batch_table(store: ObjectStore, table: Table, folder: str, manifest: dict[str, Any]) -> Table:
    """The table as the batch was extracted: the manifest's columns (name and logical type, in
    the parts' order) with the declared keys. A batch extracted before a column was added or
    declared has fewer columns than the raw table (the loader leaves the others NULL); one
    extracted under DWH_SCHEMA_CHANGES=evolve may have more (the loader adds them to raw).

    Raises ManifestError naming the manifest when a column's type is not a logical type or the
    batch lacks a primary key or cursor column (its rows could not be told apart).
    """
    where = store.uri(layout.batch_manifest(folder))
    try:
        columns = tuple(Column(str(c["name"]), LogicalType.parse(str(c["type"]))) for c in manifest.get("columns", []))
    except (KeyError, TypeError, TypeDeclarationError) as exc:
        raise ManifestError(f"{where}: a column has no valid name and type ({exc})") from None
    names = [c.name for c in columns]
    needed = [k for k in (*table.primary_key, table.cursor) if k not in names]
    if needed:
        raise ManifestError(
            f"{where}: the batch lacks the key column(s) {needed} of table {table.name!r} (it has {names}); "
            "re-extract it"
        )
    return replace(table, columns=columns)
