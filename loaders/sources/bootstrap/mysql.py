"""Bootstrap of a MySQL/MariaDB source: InnoDB DDL with ON UPDATE cursors, LOAD DATA LOCAL INFILE."""

from __future__ import annotations

import logging
from pathlib import Path

from ...declarations import Table
from ..base import SourceError, scrub
from .base import Bootstrap
from .csv_files import count_csv_records, first_line_ending

log = logging.getLogger("loaders.sources")


class MySQLBootstrap(Bootstrap):
    engine_name = "mysql"

    def surrogate_column(self, name: str) -> str:
        return f"{self.q(name)} BIGINT NOT NULL AUTO_INCREMENT"

    def cursor_column(self, name: str) -> str:
        return f"{self.q(name)} DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)"

    def table_suffix(self) -> str:
        return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

    def after_create(self, table: Table) -> None:
        index = f"{table.name}__{table.cursor}"
        exists = self.engine.execute(
            "SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() "
            "AND table_name = %s AND index_name = %s",
            (table.name, index),
        )
        if not exists:
            self.engine.execute(f"CREATE INDEX {self.q(index)} ON {self.q(table.name)} ({self.q(table.cursor)})")

    def load_file(self, table: Table, csv_path: Path) -> tuple[int, int]:
        import pymysql

        rows_read = count_csv_records(csv_path)
        q = self.q
        variables, assignments = [], []
        for i, c in enumerate(table.csv_columns):
            var = f"@v{i}"
            variables.append(var)
            expr = f"NULLIF({var}, '')"
            if c.type.kind == "timestamp":
                expr = f"NULLIF(NULLIF({expr}, '0000-00-00 00:00:00'), '0000-00-00')"
            assignments.append(f"{q(c.name)} = {expr}")
        line_end = "\\r\\n" if first_line_ending(csv_path) == "\r\n" else "\\n"
        sql = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {q(table.name)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
            f"LINES TERMINATED BY '{line_end}' IGNORE 1 LINES "
            f"({', '.join(variables)}) SET {', '.join(assignments)}"
        )
        cur = self.engine._conn.cursor()
        try:
            # Strict mode, and with LOCAL every error is only a warning: check them all.
            cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
            cur.execute("START TRANSACTION")
            log.debug("source SQL: %s", sql)
            stored = cur.execute(sql, (str(csv_path),))
            cur.execute("SHOW WARNINGS LIMIT 3")
            warnings = cur.fetchall()
            if warnings or stored != rows_read:
                cur.execute("ROLLBACK")
                detail = "; ".join(f"{w[2]}" for w in warnings) or "row count differs"
                raise SourceError(
                    f"{csv_path.name}: {rows_read} rows read but {stored} would be stored in "
                    f"{table.name!r}; nothing was loaded ({detail})"
                )
            cur.execute("COMMIT")
        except pymysql.MySQLError as exc:
            cur.execute("ROLLBACK")
            raise SourceError(
                f"{csv_path.name}: loading into {table.name!r} failed: {scrub(str(exc), self.engine.url)}"
            ) from None
        finally:
            cur.close()
        return rows_read, stored
