"""The errors a user can fix: each message names the file, table, row or setting at fault.

The CLI and the Glue job entry points print these as one line and exit with status 1; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from .catalog import CatalogError
from .config import ConfigError
from .dbt_runner import DbtError
from .extract import ExtractError
from .funnel import FunnelError
from .load import LoadError
from .source import SourceError
from .store import StoreError
from .tables import DeclarationError
from .types import TypeDeclarationError
from .warehouse import WarehouseError

USER_ERRORS: tuple[type[Exception], ...] = (
    CatalogError, ConfigError, DbtError, DeclarationError, ExtractError, FunnelError, LoadError,
    SourceError, StoreError, TypeDeclarationError, WarehouseError,
)
