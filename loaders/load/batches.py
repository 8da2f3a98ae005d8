"""Finding published batches in the store and checking their parts before a load."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from .. import layout
from ..declarations import Table
from ..store import ObjectStore, StoreError


class LoadError(RuntimeError):
    """A batch cannot be loaded; the message names the batch, the file and the reason."""


def list_batches(store: ObjectStore, table: Table) -> list[tuple[str, str]]:
    """(batch id, folder) of every published batch of a table, oldest first (ids sort by time)."""
    found = []
    for path in store.glob(layout.manifest_glob(table.name)):
        folder = path.rsplit("/", 1)[0]
        parsed = layout.parse_batch_folder(folder)
        if parsed is not None:
            found.append((parsed[1], folder))
    return sorted(found)


def verify_parts(store: ObjectStore, folder: str, manifest: dict, checksums: bool) -> None:
    """Every part is there with the size (and, with `checksums`, the SHA-256) the manifest
    promises; LoadError names the part otherwise."""
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
    check_row_counts(store, folder, manifest)


def check_row_counts(store: ObjectStore, folder: str, manifest: dict) -> None:
    """The manifest's part list is the folder's parts, and its row counts are what the parts'
    Parquet footers say: each part's `rows` and the batch's `row_count` (contract 13: a
    manifest is checked, not trusted). LoadError names the batch and the disagreement."""
    where = f"batch {manifest['batch_id']} of {manifest['table']!r} ({store.uri(layout.batch_manifest(folder))})"
    listed = sorted(f"{folder}/{p['path']}" for p in manifest["parts"])
    present = sorted(store.glob(f"{folder}/part-*.parquet"))
    if present != listed:
        extra = sorted(set(present) - set(listed))
        shown = ", ".join(p.rsplit("/", 1)[-1] for p in extra) or "?"
        raise LoadError(f"{where}: the folder holds parts the manifest does not list ({shown}); nothing was loaded")
    total = 0
    for part in manifest["parts"]:
        path = f"{folder}/{part['path']}"
        try:
            with store.fs.open(store.full(path), "rb") as handle:
                rows = pq.ParquetFile(handle).metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise LoadError(
                f"{where}: part {part['path']} is not a readable Parquet file ({exc}); nothing was loaded"
            ) from None
        if rows != part["rows"]:
            raise LoadError(
                f"{where}: part {part['path']} holds {rows} rows, the manifest says {part['rows']}; nothing was loaded"
            )
        total += rows
    if total != manifest["row_count"]:
        raise LoadError(
            f"{where}: the parts hold {total} rows, the manifest's row_count says {manifest['row_count']}; "
            "nothing was loaded"
        )
