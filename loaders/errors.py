"""The errors a user can fix: each message names the file, table, row or setting at fault.

The CLI and the Glue job entry points print these as one line and exit with status 1; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from .build import DbtError
from .config import ConfigError
from .declarations import DeclarationError, TypeDeclarationError
from .extract import ExtractError
from .funnel import CatalogError, FunnelError
from .load import LoadError
from .manifest import ManifestError
from .runs import RunFailed
from .schema import SchemaChangeError
from .sources import SourceError
from .store import StoreError
from .warehouses import WarehouseError

USER_ERRORS: tuple[type[Exception], ...] = (
    CatalogError,
    ConfigError,
    DbtError,
    DeclarationError,
    ExtractError,
    FunnelError,
    LoadError,
    ManifestError,
    RunFailed,
    SchemaChangeError,
    SourceError,
    StoreError,
    TypeDeclarationError,
    WarehouseError,
)
