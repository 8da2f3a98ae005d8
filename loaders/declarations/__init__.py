"""The datasets, declared once in the dbt sources YAML and read here by every stage.

`declared_tables()` reads the Olist tables of `models/staging/olist/_olist__sources.yml`;
`funnel_declaration()` reads the funnel events of `models/staging/funnel/_funnel__sources.yml`;
`LogicalType` maps each declared type to every engine (types.py).
"""

from .funnel import FunnelColumn, FunnelDeclaration, funnel_declaration
from .olist import (
    BATCH_ID_COLUMN,
    CHANGE_COLUMNS,
    CHANGE_SEQ_COLUMN,
    LOADED_AT_COLUMN,
    LOADER_COLUMNS,
    OP_COLUMN,
    OP_DELETE,
    OP_INSERT,
    OP_SNAPSHOT,
    OP_UPDATE,
    PART_CHANGE_COLUMNS,
    ROW_HASH_COLUMN,
    Column,
    DeclarationError,
    Freshness,
    Table,
    declared_tables,
    freshness_rules,
    select_tables,
)
from .types import Engine, Kind, LogicalType, TypeDeclarationError

__all__ = [
    "BATCH_ID_COLUMN",
    "CHANGE_COLUMNS",
    "CHANGE_SEQ_COLUMN",
    "LOADED_AT_COLUMN",
    "LOADER_COLUMNS",
    "OP_COLUMN",
    "PART_CHANGE_COLUMNS",
    "OP_DELETE",
    "OP_INSERT",
    "OP_SNAPSHOT",
    "OP_UPDATE",
    "ROW_HASH_COLUMN",
    "Column",
    "DeclarationError",
    "Engine",
    "Freshness",
    "FunnelColumn",
    "FunnelDeclaration",
    "Kind",
    "LogicalType",
    "Table",
    "TypeDeclarationError",
    "declared_tables",
    "freshness_rules",
    "funnel_declaration",
    "select_tables",
]
