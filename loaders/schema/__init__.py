"""Source schema drift (docs/architecture.md, contract 12).

inspect.py   the source table's columns and types, from the catalog (SQLite, MySQL)
diff.py      the changes against the declaration: added, missing, widened, narrowed, changed
policy.py    DWH_SCHEMA_CHANGES (evolve | freeze): what the extract does with each change
raw.py       the raw tables follow: columns added, types widened, on every warehouse
advice.py    `dwh schema diff`: the lines to declare a change and expose it in staging
"""

from .diff import Change, compare, diff_table
from .inspect import SourceColumn, source_columns
from .policy import Decision, SchemaChangeError, SchemaPlan, check_source_schema, plan_table

__all__ = [
    "Change",
    "Decision",
    "SchemaChangeError",
    "SchemaPlan",
    "SourceColumn",
    "check_source_schema",
    "compare",
    "diff_table",
    "plan_table",
    "source_columns",
]
