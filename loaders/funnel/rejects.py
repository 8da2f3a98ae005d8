"""Rejected rows: per block while parsing, then one rejects file per source file.

`rejects/funnel/<stem>.csv` holds `line,reason,text`: the line number in the landing file, the
reason (wrong_column_count, invalid_utf8, the declared checks: bad_timestamp,
unknown_event_type, empty_<column>, too_long_<column>) and the raw line.
"""

from __future__ import annotations

from .. import layout
from ..store import HashingWriter, ObjectStore


class BlockRejects:
    """A block's rejected rows, kept in order until the block is handed over."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str]] = []

    def add(self, line: int, reason: str, text: str) -> None:
        self.rows.append((line, reason, text))


class RejectsFile:
    """The rejects file of one source: line number, reason, the raw line; written to a temporary
    key first, moved into place by `publish_rejects`."""

    def __init__(self, store: ObjectStore, path: str):
        self.store, self.path = store, path
        self.counts: dict[str, int] = {}
        self._sink: HashingWriter | None = None

    def add(self, line: int, reason: str, text: str) -> None:
        if self._sink is None:
            self._sink = self.store.open_part(self.path)
            self._sink.write(b"line,reason,text\n")
        self.counts[reason] = self.counts.get(reason, 0) + 1
        quoted = '"' + text.replace('"', '""') + '"'
        self._sink.write(f"{line},{reason},{quoted}\n".encode("utf-8", "backslashreplace"))

    def close(self) -> str | None:
        if self._sink is None:
            return None
        self._sink.close()
        return self.path


def publish_rejects(store: ObjectStore, rejects: RejectsFile, stem: str) -> str | None:
    """Move the rejects into `rejects/funnel/<stem>.csv` (or remove a stale one when there are
    none); the key, or None."""
    path = rejects.close()
    final = layout.funnel_rejects(stem)
    if path is None:
        store.delete(final)  # a clean re-run leaves no stale rejects behind
        return None
    store.move(path, final)
    return final


def reasons(counts: dict[str, int]) -> str:
    """`10 bad_timestamp, 2 wrong_column_count`: most frequent first."""
    return ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))
