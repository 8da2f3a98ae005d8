"""Publishing a converted file: its Parquet files into the lake, then its marker.

A file's marker, `state/funnel/<stem>.json`, says what was converted and when:

    source          the landing key
    source_bytes    its size
    source_sha256   the SHA-256 of its content: what identifies the file (a re-delivered file
                    with other content under the same name and size is converted again)
    converted_at    when the conversion started: the value of every row's converted_at
    published_at    when its files were moved into the lake (UTC), after the whole file converted
    rows_read, rows_written, rejects, partitions, outputs

Publishing moves the new files into place, deletes this source's older outputs that the new
conversion did not replace, then writes the marker last.
"""

from __future__ import annotations

from datetime import datetime

from .. import layout
from ..runs import utcnow
from ..store import ObjectStore
from .months import YearMonth


def read_marker(store: ObjectStore, stem: str) -> dict | None:
    """The marker of a source's last conversion, or None."""
    path = layout.funnel_marker(stem)
    return store.read_json(path) if store.exists(path) else None


def is_unchanged(store: ObjectStore, key: str, size: int, previous: dict | None) -> bool:
    """Whether the landing file is the one its marker says was converted: same key, same size
    and same content (its SHA-256, read again only when the key and size match)."""
    if not previous or previous.get("source") != key or previous.get("source_bytes") != size:
        return False
    checksum = previous.get("source_sha256")
    return bool(checksum) and store.sha256(key) == checksum


def publish(
    store: ObjectStore,
    written: dict[YearMonth, str],
    stem: str,
    previous: dict | None,
    marker: dict,
) -> tuple[list[str], datetime]:
    """Move the converted files into the lake, drop the source's older outputs, write the marker
    (`marker` plus outputs and published_at); (the lake keys, published_at)."""
    outputs = []
    for (year, month), path in sorted(written.items()):
        final = layout.funnel_lake_file(year, month, stem)
        store.move(path, final)
        outputs.append(final)
    for old in (previous or {}).get("outputs", []):
        if old not in outputs:
            store.delete(old)
    published_at = utcnow()
    store.write_json(
        layout.funnel_marker(stem), {**marker, "published_at": published_at.isoformat(), "outputs": outputs}
    )
    return outputs, published_at
