"""The source database: SQLite (embedded default) or MySQL / Amazon RDS.

Creates the Olist schema from the table declarations, bulk-loads a folder of Olist CSV files
(generated or the real Kaggle files, unchanged), and answers the few questions the extractor
asks (the database clock, the URL ConnectorX reads from). On MySQL the bulk load is
`LOAD DATA LOCAL INFILE`, as in the seed design; on SQLite it is a streaming executemany.
"""

from __future__ import annotations

import csv
import logging
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Literal
from urllib.parse import unquote, urlsplit

from .config import redact_url
from .dbapi import fetch, transaction
from .tables import Table

log = logging.getLogger(__name__)
Dialect = Literal["sqlite", "mysql"]
ZERO_DATES = ("0000-00-00 00:00:00", "0000-00-00")
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"


class SourceError(RuntimeError):
    """The source database or a source file cannot be used; the message says which and why."""


@dataclass(frozen=True)
class LoadReport:
    table: str
    file: str
    rows_read: int
    rows_stored: int
    seconds: float


def scrub(message: str, url: str) -> str:
    """Remove the password of `url` from a driver's error message."""
    password = urlsplit(url).password
    if password:
        message = message.replace(password, "***").replace(unquote(password), "***")
    return message


class SourceDB:
    """A connection to the source database named by a URL."""

    def __init__(self, url: str):
        self.url = url
        parts = urlsplit(url)
        scheme = parts.scheme.split("+")[0]
        if scheme not in ("sqlite", "mysql", "mariadb"):
            raise SourceError(
                f"DWH_SOURCE_URL={redact_url(url)!r}: use sqlite:///path/file.sqlite or "
                "mysql://user:password@host:3306/database"
            )
        self.dialect: Dialect = "sqlite" if scheme == "sqlite" else "mysql"
        self._parts = parts
        self._conn = self._connect()

    # -- connection -------------------------------------------------------------------------
    @property
    def sqlite_path(self) -> Path:
        return Path(unquote(self._parts.path[1:] if self._parts.path.startswith("//") else self._parts.path))

    def _connect(self):
        if self.dialect == "sqlite":
            path = self.sqlite_path
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        import pymysql

        p = self._parts
        try:
            return pymysql.connect(
                host=p.hostname or "127.0.0.1",
                port=p.port or 3306,
                user=unquote(p.username or ""),
                password=unquote(p.password or ""),
                database=unquote(p.path.lstrip("/")) or None,
                charset="utf8mb4",
                local_infile=True,
                autocommit=True,
                connect_timeout=10,
            )
        except pymysql.MySQLError as exc:
            raise SourceError(
                f"cannot connect to the source database {redact_url(self.url)}: {scrub(str(exc), self.url)}"
            ) from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "SourceDB":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def quote(self, name: str) -> str:
        q = "`" if self.dialect == "mysql" else '"'
        return q + name.replace(q, q + q) + q

    def execute(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        return fetch(self._conn, sql, params, log)

    def transaction(self):
        return transaction(self.execute)

    def connectorx_url(self) -> str:
        """The URL ConnectorX reads with (it carries the password: never print it)."""
        if self.dialect == "sqlite":
            return f"sqlite://{self.sqlite_path.resolve()}"
        p = self._parts
        return p._replace(scheme="mysql").geturl()

    # -- clock and cursors ------------------------------------------------------------------
    def now(self) -> datetime:
        """The database's own clock: the cursor columns are written with it."""
        sql = f"SELECT {SQLITE_NOW}" if self.dialect == "sqlite" else "SELECT CURRENT_TIMESTAMP(6)"
        value = self.execute(sql)[0][0]
        return value if isinstance(value, datetime) else datetime.fromisoformat(value)

    def timestamp_literal(self, value: datetime) -> str:
        """A cursor bound formatted the way the dialect stores and compares timestamps."""
        if self.dialect == "sqlite":  # stored as text with milliseconds: compare like for like
            return "'" + value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}'"
        return "'" + value.strftime("%Y-%m-%d %H:%M:%S.%f") + "'"

    def literal(self, value: object) -> str:
        """A key value read back from this database, as a literal for its own SQL."""
        if isinstance(value, bool) or value is None:
            raise ValueError(f"unsupported key value {value!r}")
        if isinstance(value, (int, float)):
            return repr(value)
        text = str(value).replace("'", "''")
        if self.dialect == "mysql":
            text = text.replace("\\", "\\\\")
        return f"'{text}'"

    def page_key(self, table: Table) -> list[tuple[str, str]]:
        """(expression, result column) pairs a historical extract pages on, in storage order.

        InnoDB stores rows in primary-key order, SQLite in rowid order: paging on that order
        reads the table sequentially, each page continuing where the last one stopped.
        """
        if self.dialect == "sqlite":
            return [("rowid", "__page_key")]
        return [(self.quote(k), k) for k in table.primary_key]

    def page_index_hint(self) -> str:
        """Table hint for the page queries: walk the primary key. Without it MariaDB may read
        the first page (no key bound yet) through the cursor index and sort half the table."""
        return "" if self.dialect == "sqlite" else "FORCE INDEX (PRIMARY)"

    def estimate_rows(self, table: Table) -> int:
        """A cheap row estimate (statistics, not a count)."""
        if self.dialect == "sqlite":
            low, high = self.execute(f"SELECT min(rowid), max(rowid) FROM {self.quote(table.name)}")[0]
            return 0 if low is None else high - low + 1
        rows = self.execute(
            "SELECT table_rows FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
            (table.name,))
        return int(rows[0][0] or 0) if rows else 0

    def split_points(self, table: Table, parts: int) -> list[object]:
        """Values of the first page-key column that cut the table into `parts` ranges of similar
        size, found with index dives only (a walk with OFFSET reads every row it skips: about
        1 s per point on a million orders).

        Integer keys are cut evenly between their minimum and maximum. For string keys the
        characters that follow the common prefix of the minimum and the maximum are found by
        dives, assumed equally used (true of hashed and random ids such as Olist's), and the cuts
        fall between them. Other key types walk with OFFSET. Each cut is then moved to the first
        real key at or after it, above the previous cut in the database's own order, so the
        ranges never overlap whatever the collation; a poor guess only unbalances them.
        """
        if parts < 2:
            return []
        t = self.quote(table.name)
        if self.dialect == "sqlite":
            estimate = self.estimate_rows(table)
            if estimate < 2:
                return []
            low = self.execute(f"SELECT min(rowid) FROM {t}")[0][0]
            return [low + estimate * i // parts for i in range(1, parts)]
        key = self.quote(table.primary_key[0])
        low, high = self.execute(f"SELECT MIN({key}), MAX({key}) FROM {t}")[0]
        if low is None or low == high:
            return []
        if isinstance(low, int) and isinstance(high, int):
            guesses: list[object] = [low + (high - low) * i // parts for i in range(1, parts)]
        elif isinstance(low, str) and isinstance(high, str):
            guesses = list(dict.fromkeys(self._string_cuts(t, key, low, high, parts)))
        else:
            estimate = self.estimate_rows(table)
            guesses = []
            for i in range(1, parts):
                walked = self.execute(f"SELECT {key} FROM {t} ORDER BY {key} LIMIT 1 OFFSET {estimate * i // parts}")
                guesses += [walked[0][0]] if walked else []
        points: list[object] = []
        previous = low
        for guess in guesses:
            found = self.execute(f"SELECT MIN({key}) FROM {t} WHERE {key} >= %s AND {key} > %s",
                                 (guess, previous))[0][0]
            if found is None:
                break
            points.append(found)
            previous = found
        return points

    def _string_cuts(self, t: str, key: str, low: str, high: str, parts: int) -> list[str]:
        """Cut guesses for a string key. Dives at every printable character after the common
        prefix of the minimum and the maximum find the first key of each leading character in
        use; while there are fewer than 4 per range, the same is done one character deeper.
        Those keys, put in order by the database (its collation decides), are taken as evenly
        spread, which they are for hashed and random ids."""
        probes = [os.path.commonprefix([low, high])]
        found: set[str] = set()
        dives = 0
        while probes and len(found) < 4 * parts and dives < 1500:
            deeper = []
            for prefix in probes:
                code = 0x20
                while code < 0x7F:
                    hit = self.execute(f"SELECT MIN({key}) FROM {t} WHERE {key} >= %s", (prefix + chr(code),))[0][0]
                    dives += 1
                    if hit is None:
                        break
                    if hit not in found:
                        found.add(hit)
                        if len(hit) > len(prefix) + 1:
                            deeper.append(hit[:len(prefix) + 1])
                    # skip to the character after the one found (a collation that orders
                    # characters otherwise only costs guesses, never correctness)
                    code = max(code, ord(hit[len(prefix)]) if len(hit) > len(prefix) else 0) + 1
            probes = list(dict.fromkeys(deeper))
        if not found:
            return []
        marks = ", ".join(["%s"] * len(found))
        ordered = [r[0] for r in self.execute(f"SELECT DISTINCT {key} FROM {t} WHERE {key} IN ({marks}) ORDER BY {key}",
                                              sorted(found))]
        return [ordered[len(ordered) * i // parts] for i in range(1, parts)]

    def select_expression(self, table: Table, column: str, zero_dates: bool = True) -> str:
        """How a column is read for extraction. With `zero_dates`, MySQL zero dates
        (`0000-00-00 00:00:00`) become NULL on the server; that costs the server about a third
        more CPU per scanned row, so the bulk read tries the plain column first (see
        `has_zero_date_guard` and loaders/extract.py)."""
        q = self.quote(column)
        if zero_dates and self._zero_date_column(table, column):
            return f"NULLIF({q}, '0000-00-00 00:00:00') AS {q}"
        return q

    def has_zero_date_guard(self, table: Table) -> bool:
        """Whether reading this table with `zero_dates=True` differs from reading it plainly."""
        return any(self._zero_date_column(table, c) for c in table.column_names)

    def _zero_date_column(self, table: Table, column: str) -> bool:
        return self.dialect == "mysql" and table.column(column).type.kind == "timestamp"

    # -- schema -----------------------------------------------------------------------------
    def table_exists(self, table: Table) -> bool:
        if self.dialect == "sqlite":
            sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s"
        return self.execute(sql, (table.name,))[0][0] > 0

    def row_count(self, table: Table) -> int:
        return self.execute(f"SELECT count(*) FROM {self.quote(table.name)}")[0][0]

    def create_table(self, table: Table) -> None:
        """Create the table (if missing) with its key, cursor default, trigger and index."""
        q, t = self.quote, self.quote(table.name)
        cols = []
        for c in table.columns:
            if c.name == table.surrogate:
                auto = "INTEGER PRIMARY KEY AUTOINCREMENT" if self.dialect == "sqlite" else "BIGINT NOT NULL AUTO_INCREMENT"
                cols.append(f"{q(c.name)} {auto}")
            elif c.name == table.cursor:
                if self.dialect == "sqlite":
                    cols.append(f"{q(c.name)} TIMESTAMP NOT NULL DEFAULT ({SQLITE_NOW})")
                else:
                    cols.append(
                        f"{q(c.name)} DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) "
                        "ON UPDATE CURRENT_TIMESTAMP(6)"
                    )
            else:
                null = " NOT NULL" if c.name in table.primary_key else ""
                cols.append(f"{q(c.name)} {c.type.sql(self.dialect)}{null}")
        if not (self.dialect == "sqlite" and table.surrogate):
            cols.append(f"PRIMARY KEY ({', '.join(q(k) for k in table.primary_key)})")
        suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin" if self.dialect == "mysql" else ""
        self.execute(f"CREATE TABLE IF NOT EXISTS {t} (\n  " + ",\n  ".join(cols) + f"\n){suffix}")
        index = q(f"{table.name}__{table.cursor}")
        if self.dialect == "sqlite":
            self.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {t} ({q(table.cursor)})")
            # SQLite has no ON UPDATE: a trigger keeps the change column.
            self.execute(
                f"CREATE TRIGGER IF NOT EXISTS {q(table.name + '__touch')} AFTER UPDATE ON {t} "
                f"FOR EACH ROW WHEN NEW.{q(table.cursor)} IS OLD.{q(table.cursor)} BEGIN "
                f"UPDATE {t} SET {q(table.cursor)} = {SQLITE_NOW} WHERE rowid = NEW.rowid; END"
            )
        elif not self.execute(
            "SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() "
            "AND table_name = %s AND index_name = %s",
            (table.name, f"{table.name}__{table.cursor}"),
        ):
            self.execute(f"CREATE INDEX {index} ON {t} ({q(table.cursor)})")

    def drop_table(self, table: Table) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.quote(table.name)}")

    # -- bulk load --------------------------------------------------------------------------
    def bulk_load(self, table: Table, csv_path: Path) -> LoadReport:
        """Load one Olist CSV file into its (empty) table, all or nothing."""
        import time

        started = time.perf_counter()
        check_header(table, csv_path)
        if self.row_count(table):
            raise SourceError(
                f"table {table.name!r} already has rows; load into an empty source (use --replace)"
            )
        if self.dialect == "sqlite":
            read, stored = self._load_sqlite(table, csv_path)
        else:
            read, stored = self._load_mysql(table, csv_path)
        return LoadReport(table.name, csv_path.name, read, stored, time.perf_counter() - started)

    def _load_sqlite(self, table: Table, csv_path: Path) -> tuple[int, int]:
        names = [c.name for c in table.csv_columns]
        width = len(names)
        kinds = [c.type.kind for c in table.csv_columns]
        timestamp_idx = [i for i, k in enumerate(kinds) if k == "timestamp"]
        sql = (
            f"INSERT INTO {self.quote(table.name)} ({', '.join(self.quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' * width)})"
        )

        def rows() -> Iterator[list[str | None]]:
            with open_csv(csv_path) as reader:
                next(reader)
                for record in reader:
                    if len(record) != width:
                        raise SourceError(
                            f"{csv_path.name}, line {reader.line_num}: {len(record)} fields, "
                            f"expected {width} ({', '.join(names)})"
                        )
                    values: list[str | None] = [v if v != "" else None for v in record]
                    for i in timestamp_idx:
                        if values[i] in ZERO_DATES:
                            values[i] = None
                    yield values

        counter = _Counter(rows())
        with self.transaction():
            cur = self._conn.cursor()
            try:
                cur.executemany(sql, counter)
            except sqlite3.IntegrityError as exc:
                raise SourceError(f"{csv_path.name}, line {counter.count + 1}: {exc}") from None
            stored = self.row_count(table)
            self._check_sqlite_types(table, csv_path)
        return counter.count, stored

    def _check_sqlite_types(self, table: Table, csv_path: Path) -> None:
        """SQLite stores a malformed number as text: refuse it like MySQL's strict mode."""
        expected = {"integer": "'integer'", "bigint": "'integer'", "double": "'real','integer'"}
        for c in table.csv_columns:
            col = self.quote(c.name)
            if c.type.kind == "decimal":
                condition = f"{col} GLOB '*[^0-9.+-]*' OR {col} NOT GLOB '*[0-9]*'"
            elif c.type.kind in expected:
                condition = f"typeof({col}) NOT IN ({expected[c.type.kind]}, 'null')"
            else:
                continue
            bad = self.execute(f"SELECT {col} FROM {self.quote(table.name)} WHERE {condition} LIMIT 1")
            if bad:
                raise SourceError(
                    f"{csv_path.name}: column {c.name!r} has a value that is not a number: {bad[0][0]!r}"
                )

    def _load_mysql(self, table: Table, csv_path: Path) -> tuple[int, int]:
        import pymysql

        rows_read = count_csv_records(csv_path)
        q = self.quote
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
        cur = self._conn.cursor()
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
            raise SourceError(f"{csv_path.name}: loading into {table.name!r} failed: {scrub(str(exc), self.url)}") from None
        finally:
            cur.close()
        return rows_read, stored


class _Counter:
    """Counts the rows an iterator yields (for the rows-read report)."""

    def __init__(self, it: Iterator):
        self._it, self.count = it, 0

    def __iter__(self) -> "_Counter":
        return self

    def __next__(self):
        value = next(self._it)
        self.count += 1
        return value


@contextmanager
def open_csv(path: Path) -> Iterator["csv._reader"]:
    """A csv reader that handles the BOM, CRLF and quoted multi-line fields."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            yield csv.reader(handle, strict=True)
    except FileNotFoundError:
        raise SourceError(f"missing file: {path}") from None
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise SourceError(f"{path.name}: malformed CSV: {exc}") from None


def check_header(table: Table, path: Path) -> None:
    expected = [c.name for c in table.csv_columns]
    with open_csv(path) as reader:
        header = next(reader, None)
    if header != expected:
        raise SourceError(
            f"{path.name}: wrong header for table {table.name!r}: got {','.join(header or [])!r}, "
            f"expected {','.join(expected)!r}"
        )


def count_csv_records(path: Path) -> int:
    with open_csv(path) as reader:
        return sum(1 for _ in reader) - 1


def first_line_ending(path: Path) -> str:
    with open(path, "rb") as handle:
        line = handle.readline()
    return "\r\n" if line.endswith(b"\r\n") else "\n"


def load_folder(db: SourceDB, tables: list[Table], folder: Path, replace: bool = False,
                progress=None) -> list[LoadReport]:
    """Create the schema and bulk-load every declared table from its CSV file in `folder`."""
    folder = Path(folder)
    missing = [t.csv_file for t in tables if not (folder / t.csv_file).is_file()]
    if missing:
        raise SourceError(f"missing file(s) in {folder}: {', '.join(missing)}")
    for table in tables:
        check_header(table, folder / table.csv_file)
    reports = []
    for table in tables:
        if replace:
            db.drop_table(table)
        db.create_table(table)
        report = db.bulk_load(table, folder / table.csv_file)
        if progress:
            progress(report)
        reports.append(report)
    return reports
