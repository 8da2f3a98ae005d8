"""Finding published batches in the store and checking their parts before a load."""

from __future__ import annotations

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
