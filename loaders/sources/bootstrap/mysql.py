"""Bootstrap of a MySQL/MariaDB source: InnoDB DDL with ON UPDATE cursors, LOAD DATA LOCAL INFILE."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ...declarations import Table
from ..base import SourceError, scrub
from .base import Bootstrap, BulkLoadReport
from .values import checked_records

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

    def load_all(
        self, tables: list[Table], folder: Path, replace: bool, progress: Callable[[BulkLoadReport], None] | None
    ) -> list[BulkLoadReport]:
        """Check every file first, writing each as a normalized copy (LF line ends, every value
        quoted, NULL as an empty field); only then create and fill the tables. MySQL commits
        DDL at once, so all or nothing takes renames: a table that exists is renamed aside
        (`<table>__replaced`) and renamed back if any load fails; the new tables are dropped."""
        with tempfile.TemporaryDirectory(prefix="dwh-source-load-") as tmp:
            prepared = {t.name: _normalized_copy(t, folder / t.csv_file, Path(tmp)) for t in tables}
            aside: list[Table] = []
            created: list[Table] = []
            reports = []
            try:
                for table in tables:
                    started = time.perf_counter()
                    if self.engine.table_exists(table):
                        self._rename(table.name, _aside(table))
                        aside.append(table)
                    self.create_table(table)
                    created.append(table)
                    path, rows = prepared[table.name]
                    stored = self._load_data(table, path, rows, folder / table.csv_file)
                    reports.append(self.report(table, folder / table.csv_file, rows, stored, started))
                    if progress:
                        progress(reports[-1])
            except BaseException:
                for table in created:
                    self.drop_table(table)
                for table in aside:
                    self._rename(_aside(table), table.name)
                raise
            for table in aside:
                self.engine.execute(f"DROP TABLE IF EXISTS {self.q(_aside(table))}")
        return reports

    def _rename(self, old: str, new: str) -> None:
        self.engine.execute(f"DROP TABLE IF EXISTS {self.q(new)}")
        self.engine.execute(f"RENAME TABLE {self.q(old)} TO {self.q(new)}")

    def _load_data(self, table: Table, path: Path, rows_read: int, original: Path) -> int:
        """LOAD DATA LOCAL INFILE of a normalized copy in one transaction; any warning rolls it back."""
        import pymysql

        q = self.q
        variables, assignments = [], []
        for i, c in enumerate(table.csv_columns):
            var = f"@v{i}"
            variables.append(var)
            # LENGTH, not NULLIF(@v, ''): under PAD SPACE collations ' ' = '' is true
            assignments.append(f"{q(c.name)} = IF(LENGTH({var}) = 0, NULL, {var})")
        sql = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {q(table.name)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
            "LINES TERMINATED BY '\\n' "
            f"({', '.join(variables)}) SET {', '.join(assignments)}"
        )
        cur = self.engine._conn.cursor()
        try:
            # Strict mode, and with LOCAL every error is only a warning: check them all.
            cur.execute(
                "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION'"
            )
            cur.execute("START TRANSACTION")
            log.debug("source SQL: %s", sql)
            stored = cur.execute(sql, (str(path),))
            cur.execute("SHOW WARNINGS LIMIT 3")
            warnings = cur.fetchall()
            if warnings or stored != rows_read:
                cur.execute("ROLLBACK")
                detail = "; ".join(f"{w[2]}" for w in warnings) or "row count differs"
                raise SourceError(
                    f"{original.name}: {rows_read} rows read but {stored} would be stored in {table.name!r} ({detail})"
                )
            cur.execute("COMMIT")
        except pymysql.MySQLError as exc:
            cur.execute("ROLLBACK")
            raise SourceError(
                f"{original.name}: loading into {table.name!r} failed: {scrub(str(exc), self.engine.url)}"
            ) from None
        finally:
            cur.close()
        return int(stored)


def _aside(table: Table) -> str:
    return f"{table.name}__replaced"


def _normalized_copy(table: Table, csv_path: Path, folder: Path) -> tuple[Path, int]:
    """The file's checked records (values.py) written for LOAD DATA: LF line ends, no header,
    every value quoted (a quote doubled), NULL as an unquoted empty field. Returns (path, rows)."""
    out = folder / csv_path.name
    rows = 0
    with open(out, "w", encoding="utf-8", newline="") as handle:
        for _, values in checked_records(table, csv_path):
            handle.write(",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values) + "\n")
            rows += 1
    return out, rows
