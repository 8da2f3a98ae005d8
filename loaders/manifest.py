"""The batch manifest: the contract between extract and load (docs/architecture.md, contract 2).

`_manifest.json` is written last in a batch folder; its presence publishes the batch. It lists
every part with its rows, bytes and SHA-256, the column schema, the cursor range and the mode.
Beside it, `_copy.manifest` is Redshift's COPY manifest of the same parts (with
`content_length`, which COPY needs for Parquet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import layout
from .declarations import LogicalType, Table
from .store import ObjectStore

MANIFEST_VERSION = 1


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
    """The manifest of the batch in `folder`, checked: version, table, batch id, columns.

    Raises ManifestError naming the manifest's URI.
    """
    manifest = store.read_json(layout.batch_manifest(folder))
    where = store.uri(layout.batch_manifest(folder))
    if manifest.get("version") != MANIFEST_VERSION or manifest.get("table") != table.name:
        raise ManifestError(f"{where}: not a version-{MANIFEST_VERSION} manifest of table {table.name!r}")
    if not layout.BATCH_ID.match(str(manifest.get("batch_id", ""))):
        raise ManifestError(f"{where}: invalid batch id {manifest.get('batch_id')!r}")
    declared = list(table.column_names)
    extracted = [c["name"] for c in manifest.get("columns", [])]
    if extracted != declared:
        raise ManifestError(
            f"{where}: the batch has columns {extracted} but table {table.name!r} declares {declared}; "
            "re-extract it or migrate the raw table"
        )
    return manifest
