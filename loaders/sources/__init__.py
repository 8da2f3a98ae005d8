"""The source database: one class per engine, chosen by the URL's scheme.

    with open_source(settings.source_url) as source:
        source.now(); source.split_points(table, 2); ...

`bootstrap/` creates the schema and bulk-loads CSV files (once, `dwh source load`); the
hourly extract needs only what `SourceEngine` offers.
"""

from __future__ import annotations

from typing import get_args
from urllib.parse import urlsplit

from ..config import redact_url
from .base import SourceEngine, SourceEngineName, SourceError, scrub
from .mysql import MySQLSource
from .sqlite import SQLiteSource

ENGINES: dict[str, type[SourceEngine]] = {cls.name: cls for cls in (SQLiteSource, MySQLSource)}
assert set(ENGINES) == set(get_args(SourceEngineName))


def engine_class(url: str) -> type[SourceEngine]:
    """The engine class for a source URL; SourceError names the URL (password hidden)."""
    scheme = urlsplit(url).scheme.split("+")[0]
    for cls in ENGINES.values():
        if scheme in cls.schemes:
            return cls
    raise SourceError(
        f"DWH_SOURCE_URL={redact_url(url)!r}: use sqlite:///path/file.sqlite or "
        "mysql://user:password@host:3306/database"
    )


def open_source(url: str, create: bool = False) -> SourceEngine:
    """Connect to the source database named by `url`.

    `create=True` (`dwh source load`, the demo's loaders, test fixtures) lets an embedded
    source (SQLite) create its file; otherwise a missing file raises SourceError naming it and
    the command that makes it, so a read-only command (extract, verify, schema diff, status)
    run before the source exists leaves nothing behind. Server sources (MySQL) ignore it.
    """
    return engine_class(url)(url, urlsplit(url), create=create)


__all__ = [
    "ENGINES",
    "MySQLSource",
    "SQLiteSource",
    "SourceEngine",
    "SourceEngineName",
    "SourceError",
    "engine_class",
    "open_source",
    "scrub",
]
