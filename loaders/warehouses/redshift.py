"""Amazon Redshift: COPY from the batch's manifest with the cluster's IAM role; the funnel lake
through Spectrum."""

from __future__ import annotations

import json

from .. import layout
from ..config import ConfigError
from ..declarations import Table
from .base import LOAD_LOG, Warehouse, WarehouseError, part_columns
from .sql import literal, quote


class RedshiftWarehouse(Warehouse):
    name = "redshift"
    verifies_part_checksums = False

    def table_options(self, table: Table) -> str:
        # Raw tables are read by merge key and by cursor (staging dedup, incremental facts).
        return f"\nDISTKEY ({quote(table.merge_key)})\nSORTKEY ({quote(table.cursor)})"

    def lock_statement(self) -> str | None:
        # Serializes concurrent loaders: Redshift does not enforce the log's primary key.
        return f"LOCK {self.raw_name(LOAD_LOG)}"

    def fill_stage_statements(self, table: Table, manifest: dict, folder: str) -> list[str]:
        if not self.settings.redshift_iam_role:
            raise ConfigError("DWH_REDSHIFT_IAM_ROLE is not set: COPY needs the ARN of a role Redshift can assume")
        manifest_uri = self.store.uri(layout.batch_copy_manifest(folder))
        cols = ", ".join(quote(c) for c in part_columns(table, manifest))
        return [
            f"COPY {self.stage_name(table)} ({cols})\n"
            f"FROM {literal(manifest_uri)}\n"
            f"IAM_ROLE {literal(self.settings.redshift_iam_role)}\n"
            "FORMAT AS PARQUET\n"
            "MANIFEST\n"
            "ACCEPTINVCHARS"
        ]

    def connect(self) -> None:
        import redshift_connector

        s = self.settings
        try:
            self.conn = redshift_connector.connect(
                host=s.redshift_host,
                port=s.redshift_port,
                database=s.redshift_database,
                user=s.redshift_user,
                password=s.redshift_password,
            )
        except Exception as exc:
            raise WarehouseError(
                f"cannot connect to Redshift at {s.redshift_host}:{s.redshift_port}/{s.redshift_database} "
                f"as {s.redshift_user!r}: {type(exc).__name__}"
            ) from None
        self.conn.autocommit = True

    def copy_error_query(self) -> str:
        """The query for the failed COPY's rows (file, line, column, reason; at most 5), in the system
        view the target has: `sys_load_error_detail` on Redshift Serverless, where the STL tables do
        not exist, `stl_load_errors` on a provisioned cluster (Settings.is_redshift_serverless).

        Serverless: SYS views number queries differently from pg_last_copy_id(), so the newest COPY
        with errors of this session (session_id is the backend's pid) is taken.
        Source: Redshift Database Developer Guide, SYS_LOAD_ERROR_DETAIL and STL_LOAD_ERRORS."""
        if self.settings.is_redshift_serverless:
            return (
                "SELECT TRIM(file_name), line_number, TRIM(column_name), TRIM(error_message) "
                "FROM sys_load_error_detail WHERE session_id = pg_backend_pid() AND query_id = "
                "(SELECT MAX(query_id) FROM sys_load_error_detail WHERE session_id = pg_backend_pid()) "
                "ORDER BY start_time DESC LIMIT 5"
            )
        return (
            "SELECT TRIM(filename), line_number, TRIM(colname), TRIM(err_reason) "
            "FROM stl_load_errors WHERE query = pg_last_copy_id() ORDER BY starttime DESC LIMIT 5"
        )

    def copy_error_detail(self) -> str:
        """Why the last COPY failed: `file <uri>, line <n>, column <name>: <reason>` per error row."""
        rows = self.execute(self.copy_error_query())
        return "; ".join(f"file {r[0]}, line {r[1]}, column {r[2]}: {r[3]}" for r in rows)

    def publish_funnel(self) -> str:
        return "Redshift reads the lake through Spectrum"

    def build_preparations(self) -> list[list[str]]:
        """The Spectrum schema over the Glue database (the funnel source), created if missing."""
        if not self.settings.glue_database:
            return []
        location = self.store.uri(layout.FUNNEL_LAKE) + "/"
        args = json.dumps({"glue_database": self.settings.glue_database, "location": location})
        return [["run-operation", "setup_spectrum", "--args", args]]
