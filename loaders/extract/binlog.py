"""Binary-log capture (DWH_CAPTURE=binlog): MySQL/MariaDB row events as batches (contract 11).

A table captured from the binary log has a stored position (`olist/<table>/_state.json`, key
`binlog`: file, position and, where the server has them, its GTID set). It is set by the table's
historical extract, which reads the table inside a consistent snapshot and records the binary-log
position of that snapshot (`snapshot_rows`):

- MariaDB: `START TRANSACTION WITH CONSISTENT SNAPSHOT`, then `SHOW STATUS LIKE
  'binlog_snapshot_%'` inside it. MariaDB keeps `binlog_snapshot_file`/`_position` consistent
  with the snapshot without blocking writers: every transaction committed before that position
  is in the snapshot, none after it.
- MySQL: `FLUSH TABLES WITH READ LOCK`, the snapshot, `SHOW MASTER STATUS`, `UNLOCK TABLES`
  (writes wait for the few milliseconds between the first and the last statement).

The snapshot is read on that one connection (streamed, `batch_rows` rows at a time), not on the
parallel key-range connections of the cursor mode's historical extract, which would each see
another moment. The GTID set (`@@gtid_binlog_pos` on MariaDB, `@@gtid_executed` on MySQL) is
recorded beside the position for people and tools (only when it is certainly the snapshot's:
nothing committed between the snapshot and reading it); capture resumes by file and position.

Each later run reads the row events of all its tables in one pass (`LogPass`, driven by
loaders/extract/capture.py): from the earliest of their stored positions up to the end position
read once at the run's start (`SHOW MASTER STATUS`, always a transaction boundary), with the
`mysql-replication` package's replication connection; each table takes the events after its own
position, so each change is read into its table's batch once. The library connects, registers as
a replica and starts the dump; the events are framed here (`_Frames`, `LogPass._events`: the
common header, ROTATE, FORMAT_DESCRIPTION's checksum algorithm, XID, QUERY, the table id of
TABLE_MAP and row events), the library parsing only FORMAT_DESCRIPTION and the table maps of
declared tables. Other tables' row events are skipped without decoding; the rows of a declared
table's WRITE/UPDATE/DELETE_ROWS events are decoded by a function generated per table map
(loaders/extract/binlog_rows.py, `RowImages`), or by the library where a column type needs it. An
unknown event type, a compressed event or rows that do not decode exactly fail the pass with one
line (SourceError); nothing is skipped silently. Inserts become
versions with `_op` 'c', updates 'u' (the after image), deletes 'd' tombstones (primary key,
cursor as in the before image, the other declared columns NULL); `_change_seq` numbers the
changes in commit order (the order of the log), so several changes of one key in one batch keep
their order and staging takes the last. The batch's manifest records both positions; the stored
position advances to the end position only after the manifest is written. A run that stopped
between the two finds the published batch that starts at the stored position and adopts its end
position instead of reading the range again (`_adopt_published`), so no change is written twice.

A schema change of a captured table (ALTER, DROP, RENAME, TRUNCATE) in the log stops that
table's capture (the other tables of the pass read on): the changes before it are published,
the position stays at the start of the statement's transaction, and `SchemaChangeError` names
the table and the statement; every run stops there again until the table is re-extracted
(`dwh extract --mode historical`). A row image that lacks declared columns (a session that set
binlog_row_image=MINIMAL or NOBLOB) stops its table the same way (`PartialImageError`) rather than
stage NULLs for the absent columns.

When the server no longer has the stored position's file (binary-log retention shorter than the
outage), `PositionLostError` says so; the pipeline then takes a new historical extract of that
table (loaders/pipeline.py), whose snapshot batch also tombstones keys deleted meanwhile.
"""

from __future__ import annotations

import logging
import re
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from .. import layout
from ..config import Settings
from ..declarations import Table
from ..sources import MySQLSource, SourceEngine, SourceError, scrub
from ..store import ObjectStore
from .binlog_rows import DELETE_ROWS, UPDATE_ROWS, WRITE_ROWS, RowImages
from .parts import ExtractError, conform

log = logging.getLogger("loaders.extract")

OP_INSERT, OP_UPDATE, OP_DELETE = "c", "u", "d"
# binary-log event types (MySQL's Log_event_type, MariaDB's additions from 160)
QUERY, ROTATE, FORMAT_DESCRIPTION, XID, TABLE_MAP, PARTIAL_UPDATE_ROWS = 2, 4, 15, 16, 19, 39
_ROWS = WRITE_ROWS | UPDATE_ROWS | DELETE_ROWS | {PARTIAL_UPDATE_ROWS}
# MySQL's TRANSACTION_PAYLOAD (binlog_transaction_compression), MariaDB's compressed QUERY and
# WRITE/UPDATE/DELETE_ROWS v1/v2 (log_bin_compress)
_COMPRESSED = frozenset({40, *range(165, 172)})
# events that carry neither rows nor schema changes nor transaction ends: STOP, INTVAR, RAND,
# USER_VAR, HEARTBEAT, IGNORABLE, ROWS_QUERY, GTID, ANONYMOUS_GTID, PREVIOUS_GTIDS,
# TRANSACTION_CONTEXT, VIEW_CHANGE, XA_PREPARE, HEARTBEAT_V2, GTID_TAGGED; MariaDB's
# ANNOTATE_ROWS, BINLOG_CHECKPOINT, GTID, GTID_LIST, START_ENCRYPTION
_IGNORED = frozenset({3, 5, 13, 14, 27, 28, 29, 33, 34, 35, 36, 37, 38, 41, 42, 160, 161, 162, 163, 164})
_HEAD = struct.Struct("<IBIIIH")  # the common event header after the OK byte: timestamp, type,
# server id, event size, end position, flags
SCHEMA_STATEMENT = re.compile(r"^\s*(ALTER|DROP|RENAME|TRUNCATE|CREATE\s+OR\s+REPLACE)\b", re.IGNORECASE)
DML_STATEMENT = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|LOAD\s+DATA)\b", re.IGNORECASE)
"""A change logged as a statement (a session with binlog_format=STATEMENT, or MIXED choosing it):
its rows are not in the log, so the table's capture stops instead of missing them."""
COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*|#[^\n]*", re.DOTALL)


class PositionLostError(ExtractError):
    """The server no longer has the binary log at a table's stored position."""


class SchemaChangeError(ExtractError):
    """A schema change of a captured table in the binary log stops its capture."""


class PartialImageError(ExtractError):
    """A row event of a captured table lacks declared columns (a partial row image) or holds a
    partial JSON update: its capture stops rather than write NULLs for the absent columns."""


@dataclass(frozen=True, order=True)
class Position:
    """A binary-log position: file and byte offset (ordered by file sequence number, then offset),
    and the server's GTID set at that point where it has one."""

    file: str
    pos: int
    gtid: str = ""

    @property
    def key(self) -> tuple[int, int]:
        """(file sequence number, offset): binary-log files are named `<base>.<number>`."""
        return (int(self.file.rsplit(".", 1)[-1]), self.pos)

    def __str__(self) -> str:
        return f"{self.file}:{self.pos}" + (f" (GTID {self.gtid})" if self.gtid else "")

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "pos": self.pos, "gtid": self.gtid}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Position:
        return cls(str(value["file"]), int(value["pos"]), str(value.get("gtid") or ""))


def _mysql(engine: SourceEngine) -> MySQLSource:
    """The engine as a MySQLSource (binlog capture reads only MySQL/MariaDB: `require_mysql`)."""
    if not isinstance(engine, MySQLSource):
        raise ExtractError(f"binlog capture needs a MySQL or MariaDB source, not {engine.name}")
    return engine


def require_mysql(engine: SourceEngine) -> None:
    """Raise ExtractError unless the source is MySQL/MariaDB with a row-based binary log that
    carries full row images (and, where the server has the setting, full row metadata) and whose
    events are not compressed (MariaDB's log_bin_compress, MySQL's binlog_transaction_compression:
    capture reads no compressed event). A session may still change binlog_row_image; a partial
    image then stops its table (PartialImageError)."""
    if engine.name != "mysql":
        raise ExtractError(f"DWH_CAPTURE=binlog needs a MySQL/MariaDB source; the source is {engine.name}")
    settings = dict(
        engine.execute(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', "
            "'binlog_row_metadata', 'log_bin_compress', 'binlog_transaction_compression')"
        )
    )
    need = {
        "log_bin": "ON",
        "binlog_format": "ROW",
        "binlog_row_image": "FULL",
        "binlog_row_metadata": "FULL",
        "log_bin_compress": "OFF",
        "binlog_transaction_compression": "OFF",
    }
    optional = {"binlog_row_metadata", "log_bin_compress", "binlog_transaction_compression"}  # not on every server
    for name, value in need.items():
        have = str(settings.get(name, value if name in optional else "")).upper()
        if have != value:
            raise ExtractError(
                f"DWH_CAPTURE=binlog needs the source server's {name}={value} (it is {have or 'unset'}): "
                "see docs/deploy.md"
            )


def _gtid(engine: SourceEngine) -> str:
    for sql in ("SELECT @@gtid_binlog_pos", "SELECT @@gtid_executed"):
        try:
            return str(engine.execute(sql)[0][0] or "")
        except Exception:
            continue
    return ""


def _master_status(engine: SourceEngine) -> tuple[str, int]:
    for sql in ("SHOW MASTER STATUS", "SHOW BINARY LOG STATUS"):
        try:
            rows = engine.execute(sql)
        except Exception:
            continue
        if rows:
            return str(rows[0][0]), int(rows[0][1])
    raise ExtractError("the source server has no binary log (SHOW MASTER STATUS is empty): see docs/deploy.md")


def current_position(engine: SourceEngine) -> Position:
    """The end of the binary log now (a transaction boundary), with the GTID set."""
    gtid = _gtid(engine)
    file, pos = _master_status(engine)
    return Position(file, pos, gtid)


def server_logs(engine: SourceEngine) -> list[str]:
    """The binary-log files the server still has (SHOW BINARY LOGS), oldest first."""
    return [str(r[0]) for r in engine.execute("SHOW BINARY LOGS")]


def check_position(engine: SourceEngine, table: Table, start: Position) -> None:
    """Raise PositionLostError when the server has purged the log file of `start`."""
    logs = server_logs(engine)
    if start.file not in logs:
        oldest = logs[0] if logs else "none"
        raise PositionLostError(
            f"table {table.name!r}: the binary log at the stored position {start} is gone from the "
            f"server (oldest log {oldest}; retention shorter than the time since the last run)"
        )


# -- the historical extract's consistent snapshot ----------------------------------------------


def snapshot_rows(
    engine: SourceEngine, table: Table, settings: Settings, found: list[Position]
) -> Iterator[pa.RecordBatch]:
    """Every row of `table` read inside one consistent snapshot, conformed to the declared
    schema; appends the binary-log position of the snapshot to `found` before the first row.

    Raises SourceError naming the table when the read fails."""
    import pymysql
    import pymysql.cursors

    try:
        conn = pymysql.connect(**_mysql(engine).connect_kwargs(), cursorclass=pymysql.cursors.SSCursor)
    except pymysql.MySQLError as exc:
        raise SourceError(f"reading table {table.name!r} failed: {scrub(str(exc), engine.url)}") from None
    schema = table.arrow_schema()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            mariadb = bool(cur.fetchall())
            if mariadb:
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
                status = {str(k).lower(): str(v) for k, v in cur.fetchall()}
                file, pos = status["binlog_snapshot_file"], int(status["binlog_snapshot_position"])
                # the GTID set is recorded only when nothing committed since the snapshot began
                cur.execute("SELECT @@gtid_binlog_pos")
                gtid = str(cur.fetchall()[0][0] or "")
                cur.execute("SHOW MASTER STATUS")
                still = cur.fetchall()
                position = Position(file, pos, gtid if still and tuple(still[0][:2]) == (file, pos) else "")
            else:
                cur.execute("FLUSH TABLES WITH READ LOCK")
                try:
                    cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                    cur.execute("SHOW MASTER STATUS")
                    file, pos = cur.fetchall()[0][:2]
                    cur.execute("SELECT @@gtid_executed")
                    position = Position(str(file), int(pos), str(cur.fetchall()[0][0] or ""))
                finally:
                    cur.execute("UNLOCK TABLES")
            found.append(position)
            cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                "AND table_name = %s AND column_name = %s",
                (table.name, table.cursor),
            )
            if cur.fetchall():
                columns = ", ".join(engine.select_expression(table, c) for c in table.column_names)
            else:  # no cursor column in the source: the snapshot's time, to the second (UTC)
                cur.execute("SELECT CAST(UTC_TIMESTAMP() AS CHAR)")
                taken = str(cur.fetchall()[0][0])
                columns = ", ".join(
                    f"CAST('{taken}' AS DATETIME(6)) AS {engine.quote(c)}"
                    if c == table.cursor
                    else engine.select_expression(table, c)
                    for c in table.column_names
                )
            cur.execute(f"SELECT {columns} FROM {engine.quote(table.name)}")
            while True:
                rows = cur.fetchmany(settings.batch_rows)
                if not rows:
                    break
                yield conform(_to_batch(table, rows), schema, table)
            cur.execute("COMMIT")
    except pymysql.MySQLError as exc:
        raise SourceError(f"reading table {table.name!r} failed: {scrub(str(exc), engine.url)}") from None
    finally:
        conn.close()


def _to_batch(table: Table, rows: list[tuple] | list[list]) -> pa.RecordBatch:
    """Rows (tuples in declaration order) as a record batch typed to the declaration."""
    arrays = []
    for c, values in zip(table.columns, zip(*rows, strict=True) if rows else [()] * len(table.columns), strict=True):
        try:
            arrays.append(pa.array(values, type=c.type.arrow()))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            arrays.append(pa.array(values))  # conform() then casts, or names the column
    return pa.RecordBatch.from_arrays(arrays, names=list(table.column_names))


# -- reading row events ------------------------------------------------------------------------


@dataclass
class Chunk:
    """Row versions of one table read from the log, in commit order: rows in declaration order
    and their `_op`s. The last chunk of a table stopped by a schema change has no rows, its
    `stopped` error and `at`, the position before the change (where the table's capture resumes)."""

    table: str
    rows: list[list[Any]]
    ops: list[str]
    stopped: ExtractError | None = None
    at: Position | None = None


@dataclass
class _Reading:
    """One table in a pass: where its changes start (events ending at or before it are already
    in its batches) and the rows read for it since its last chunk."""

    table: Table
    start: Position
    names: list[str]
    keep: frozenset[str]  # the columns a tombstone keeps: primary key and cursor
    rows: list[list[Any]]
    ops: list[str]
    columns: Any = None  # the table map (mysql-replication's column list) `images` was made for
    images: RowImages | None = None  # the fast row decoder for it; None: the library decodes
    fill: int | None = None  # the index of the declared cursor when the source lacks it
    start_key: tuple[int, int] = (0, 0)  # start.key, compared with every event's
    needed: dict[str, list[tuple[int, str]]] | None = None  # per op: (table-map index, name) an image needs
    _absent: dict[tuple[bytes, str], list[str]] | None = None

    def __post_init__(self) -> None:
        self.start_key = self.start.key

    def absent(self, bitmap: bytes, op: str) -> list[str]:
        """The declared columns an image with the columns-present `bitmap` lacks for a change of
        kind `op` (an insert's or update's image needs every declared column the source has, a
        delete's the primary key and the cursor); remembered per bitmap."""
        if self._absent is None or self.needed is None:
            self._absent = {}
        key = (bytes(bitmap), op)
        found = self._absent.get(key)
        if found is None:
            needed = (self.needed or {})[op]
            found = self._absent[key] = [n for i, n in needed if not bitmap[i >> 3] & (1 << (i & 7))]
        return found


class LogPass:
    """One pass over the binary log for several tables: from the earliest of their start
    positions up to `end` (fixed at the run's start), each table's row events routed to it in
    commit order, as chunks of at most `batch_rows` rows (`Chunk`). A table sees only the events
    after its own start, so tables whose positions differ (one re-extracted, one stopped by a
    schema change) share the pass and still read each change once.

    A schema change of one table (ALTER, DROP, RENAME, TRUNCATE) ends that table's reading with a
    `stopped` chunk; the others go on. `drop(name)` stops routing a table's events (its batch
    failed). Iterating raises PositionLostError (the log at the first position is gone) and
    SourceError (the replication connection failed, or the log lacks column names:
    binlog_row_metadata), naming the tables still being read."""

    def __init__(self, engine: SourceEngine, starts: dict[str, tuple[Table, Position]], end: Position, batch_rows: int):
        self.engine, self.end, self.batch_rows = engine, end, batch_rows
        self._reading = {
            name: _Reading(
                table, start, list(table.column_names), frozenset({*table.primary_key, table.cursor}), [], []
            )
            for name, (table, start) in starts.items()
            if start.key < end.key
        }

    def drop(self, name: str) -> None:
        """Stop reading table `name` (its rows not yet handed out are forgotten)."""
        self._reading.pop(name, None)

    def _names(self) -> str:
        return ", ".join(repr(n) for n in self._reading)

    def __iter__(self) -> Iterator[Chunk]:
        # mysql-replication ships no type information (no py.typed): its classes are Any here
        from pymysqlreplication import BinLogStreamReader  # type: ignore[import-untyped]  # no py.typed

        if not self._reading:
            return
        first = min((r.start for r in self._reading.values()), key=lambda s: s.key)
        source = _mysql(self.engine).connect_kwargs()
        database = source["database"] or ""
        stream = BinLogStreamReader(
            connection_settings={k: source[k] for k in ("host", "port", "user", "password", "charset")},
            server_id=0x40000000 + secrets.randbelow(0x3FFFFFFF),  # unique among the server's replicas
            log_file=first.file,
            log_pos=first.pos,
            resume_stream=True,
            blocking=False,
            enable_logging=False,
        )
        try:
            # the library connects, registers as a replica and sends COM_BINLOG_DUMP; the events
            # on its connection are framed here (`_Frames`)
            stream._BinLogStreamReader__connect_to_stream()
            stream._BinLogStreamReader__connect_to_ctl()
            yield from self._events(_Frames(stream), first, database)
        except (ExtractError, GeneratorExit):
            raise
        except Exception as exc:
            if "Could not find first log file" in str(exc) or "1236" in str(exc):
                raise PositionLostError(
                    f"tables {self._names()}: the binary log at {first} is gone from the server"
                ) from None
            detail = scrub(str(exc), self.engine.url)
            raise SourceError(f"reading the binary log for tables {self._names()} failed: {detail}") from None
        finally:
            stream.close()

    def _events(self, frames: _Frames, first: Position, database: str) -> Iterator[Chunk]:
        """The pass over the events of `frames` from `first`: row events routed to their tables,
        schema changes and partial row images stopping theirs, up to the end position."""
        end_key = self.end.key
        file, seq = first.file, first.key[0]
        boundary = first  # the last transaction boundary read: where a stopped capture resumes
        tables: dict[int, _Reading | None] = {}  # table id -> the table being read (None: not read)
        checksum = frames.checksum  # bytes of each event's checksum footer (4 with CRC32; each FDE says)
        head = _HEAD.unpack_from
        for packet in frames:
            d = packet._data
            timestamp, kind, _, _, log_pos, _ = head(d, 1)
            if kind in _ROWS:
                table = tables.get(int.from_bytes(d[20:26], "little"))
                if table is None:
                    continue
                if (seq, log_pos) > end_key:
                    break
                if (seq, log_pos) <= table.start_key:
                    continue
                reading = self._reading.get(table.table.name)
                if reading is not table:  # stopped or dropped since its table map
                    continue
                stop = self._rows(
                    frames, packet, kind, d, len(d) - checksum, reading, timestamp, Position(file, log_pos)
                )
                if stop is not None:
                    yield from self._flush(reading.table.name, reading)
                    at = max(boundary, reading.start, key=lambda s: s.key)
                    del self._reading[reading.table.name]
                    yield Chunk(reading.table.name, [], [], _stop(reading.table, at, stop), at)
                    if not self._reading:
                        return
                elif len(reading.rows) >= self.batch_rows:
                    yield from self._flush(reading.table.name, reading)
            elif kind == XID:
                if (seq, log_pos) > end_key:
                    break
                boundary = Position(file, log_pos)
            elif kind == TABLE_MAP:
                table_id = int.from_bytes(d[20:26], "little")
                if table_id in tables:  # a table map already taken (a schema change stops its table)
                    continue
                n = d[28]
                schema = d[29 : 29 + n].decode("utf-8", "replace")
                name = d[31 + n : 31 + n + d[30 + n]].decode("utf-8", "replace")
                reading = self._reading.get(name) if schema == database else None
                if reading is not None:
                    _table_map(reading, frames.table_map(packet))
                tables[table_id] = reading
            elif kind == QUERY:
                if (seq, log_pos) > end_key:
                    break
                status = int.from_bytes(d[31:33], "little")
                n = d[28]
                text = 33 + status
                schema = d[text : text + n].decode("utf-8", "replace")
                query = d[text + n + 1 : len(d) - checksum].decode("utf-8", "replace")
                here_key = (seq, log_pos)
                for name, changed in list(self._reading.items()):
                    if here_key > changed.start_key and _schema_change(query, database, schema, changed.table):
                        yield from self._flush(name, changed)
                        # the statement's transaction starts at the boundary before it
                        stop_at = max(boundary, changed.start, key=lambda s: s.key)
                        del self._reading[name]
                        yield Chunk(name, [], [], _schema_stop(changed.table, stop_at, query), stop_at)
                for name, changed in list(self._reading.items()):
                    if here_key > changed.start_key and _schema_change(
                        query, database, schema, changed.table, DML_STATEMENT
                    ):
                        yield from self._flush(name, changed)
                        stop_at = max(boundary, changed.start, key=lambda s: s.key)
                        del self._reading[name]
                        yield Chunk(name, [], [], _statement_stop(changed.table, stop_at, query), stop_at)
                if not self._reading:
                    return
                if query.strip().upper() in ("COMMIT", "ROLLBACK") or SCHEMA_STATEMENT.match(query):
                    boundary = Position(file, log_pos)
            elif kind == ROTATE:
                file = d[28 : len(d) - checksum].decode()
                seq = Position(file, 0).key[0]
                if timestamp:  # a real rotation (perhaps a restart): table ids may be reused
                    tables = {}
            elif kind == FORMAT_DESCRIPTION:
                # the checksum algorithm is the byte before the 4-byte footer, which the FDE always
                # has room for (MySQL's Log_event_footer::get_checksum_alg)
                alg = d[-5]
                if alg not in (0, 1):
                    raise SourceError(f"binary log {file}: unknown checksum algorithm {alg}")
                checksum = frames.checksum = 4 if alg == 1 else 0
                frames.format_description(packet)
            elif kind in _COMPRESSED:
                raise SourceError(
                    f"binary log {Position(file, log_pos)}: a compressed event (type {kind}); binlog "
                    "capture needs the source server's log_bin_compress=OFF and binlog_transaction_compression=OFF"
                )
            elif kind not in _IGNORED:
                raise SourceError(f"binary log {Position(file, log_pos)}: an event of unknown type {kind}")
        for name, reading in list(self._reading.items()):
            yield from self._flush(name, reading)

    def _rows(
        self,
        frames: _Frames,
        packet: Any,
        kind: int,
        d: bytes,
        end: int,
        reading: _Reading,
        timestamp: int,
        here: Position,
    ) -> str | None:
        """Append the row versions of a row event (bytes `d`, rows ending at `end`) to `reading`;
        the reason the table must stop instead (a partial row image, a partial JSON update)."""
        if kind == PARTIAL_UPDATE_ROWS:
            return "a partial JSON update (binlog_row_value_options=PARTIAL_JSON)"
        p = 28 if kind < 30 else 28 + int.from_bytes(d[28:30], "little")
        count = d[p]
        p += 1
        if count >= 251:
            width = {252: 2, 253: 3, 254: 8}[count]
            count = int.from_bytes(d[p : p + width], "little")
            p += width
        if count != len(reading.columns):
            raise SourceError(
                f"table {reading.table.name!r}: a row event at {here} has {count} columns, its table map "
                f"{len(reading.columns)}"
            )
        size = (count + 7) // 8
        present, present_after = d[p : p + size], b""
        p += size
        if kind in UPDATE_ROWS:
            present_after = d[p : p + size]
            p += size
            op, image = OP_UPDATE, present_after
        else:
            op, image = (OP_INSERT, present) if kind in WRITE_ROWS else (OP_DELETE, present)
        absent = reading.absent(image, op)
        if absent:
            return (
                f"a partial row image without column(s) {', '.join(absent)} (a session with "
                "binlog_row_image=MINIMAL or NOBLOB)"
            )
        if reading.images is None:
            _library_rows(frames.rows_event(packet), op, reading)
            return None
        rows = reading.images.decode(kind, d, p, end, present, present_after)
        if rows is None:
            raise SourceError(
                f"table {reading.table.name!r}: the row event at {here} does not decode exactly "
                "(the fast row decoder and the log disagree)"
            )
        if reading.fill is not None:  # no cursor column in the source: the event's time
            committed = datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)
            for row in rows:
                row[reading.fill] = committed
        reading.rows += rows
        reading.ops += [op] * len(rows)
        return None

    def _flush(self, name: str, reading: _Reading) -> Iterator[Chunk]:
        if reading.rows:
            chunk = Chunk(name, reading.rows, reading.ops)
            reading.rows, reading.ops = [], []
            yield chunk


class _Frames:
    """The events on mysql-replication's replication connection, as pymysql packets (an OK byte,
    the 19-byte common header, the body, the checksum footer), read without the library's event
    objects; the library parses the rare events whose layout is intricate (FORMAT_DESCRIPTION,
    TABLE_MAP) and the row events of a table whose column types only it decodes."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.connection = stream._stream_connection
        # the checksum footer before the first FORMAT_DESCRIPTION (the fake ROTATE): as the library
        self.checksum = 4 if stream._BinLogStreamReader__use_checksum else 0
        self.tables: dict[int, Any] = {}  # the library's Table per table id, for `rows_event`
        self.mysql_version: tuple[int, ...] = (0, 0, 0)
        self.post_header: Any = None

    def __iter__(self) -> Iterator[Any]:
        read = self.connection._read_packet
        while True:
            packet = read()  # raises on an error packet
            if packet.is_eof_packet():
                return
            if not packet.is_ok_packet():
                raise SourceError(f"the replication stream sent an unexpected packet (first byte {packet._data[0]})")
            yield packet

    def _library(self, packet: Any, allowed: set[Any]) -> Any:
        from pymysqlreplication.packet import BinLogPacketWrapper  # type: ignore[import-untyped]  # no py.typed

        packet._position = 0
        wrapper = BinLogPacketWrapper(
            packet,
            self.tables,
            self.stream._ctl_connection,
            self.mysql_version,
            self.checksum == 4,
            allowed,
            None,
            None,
            None,
            None,
            False,  # freeze_schema: this table map is wanted (the caller skips ones it has)
            False,  # ignore_decode_errors
            False,  # verify_checksum
            True,  # optional_meta_data: binlog_row_metadata=FULL (require_mysql)
            False,  # enable_logging
            False,  # use_column_name_cache
            self.post_header,
        )
        if wrapper.event is None:
            raise SourceError(f"mysql-replication did not parse a binary-log event of type {wrapper.event_type}")
        return wrapper.event

    def format_description(self, packet: Any) -> None:
        """Take the server version and post-header lengths of a FORMAT_DESCRIPTION event."""
        from pymysqlreplication.event import FormatDescriptionEvent  # type: ignore[import-untyped]  # no py.typed

        event = self._library(packet, {FormatDescriptionEvent})
        self.mysql_version, self.post_header = event.mysql_version, event.post_header_len

    def table_map(self, packet: Any) -> list[Any]:
        """The columns (mysql-replication's Column objects, named) of a TABLE_MAP event."""
        from pymysqlreplication.row_event import TableMapEvent  # type: ignore[import-untyped]  # no py.typed

        event = self._library(packet, {TableMapEvent})
        self.tables[event.table_id] = event.get_table()
        return list(event.columns)

    def rows_event(self, packet: Any) -> Any:
        """mysql-replication's WRITE/UPDATE/DELETE_ROWS event of a packet (its table map taken)."""
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        return self._library(packet, {WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent})


def _schema_change(query: str, database: str, schema: str, table: Table, kind: re.Pattern = SCHEMA_STATEMENT) -> bool:
    """Whether the statement (from a QueryEvent on `schema`) changes the schema of `table`
    (`kind`: DML_STATEMENT asks instead whether it changes the table's rows as a statement)."""
    text = COMMENT.sub(" ", query)
    if not kind.match(text):
        return False
    names = {table.name.lower(), f"{database}.{table.name}".lower()}
    tokens = {t.replace("`", "").lower() for t in re.findall(r"`[^`]+`(?:\.`[^`]+`)?|[\w$.]+", text)}
    if schema and schema.lower() != database.lower():
        return f"{database}.{table.name}".lower() in tokens
    return bool(names & tokens)


def _stop(table: Table, at: Position, reason: str) -> PartialImageError:
    return PartialImageError(
        f"table {table.name!r}: binlog capture stopped at {at} by {reason}; re-extract the table "
        f"(dwh extract --mode historical --table {table.name}) once every session writes full row images"
    )


def _statement_stop(table: Table, at: Position, query: str) -> PartialImageError:
    return PartialImageError(
        f"table {table.name!r}: binlog capture stopped at {at} by a change logged as a statement, "
        f"without its rows: {' '.join(query.split())[:200]}; every session must write row events "
        f"(binlog_format=ROW, also per session); then re-extract the table (dwh extract --mode historical "
        f"--table {table.name})"
    )


def _schema_stop(table: Table, at: Position, query: str) -> SchemaChangeError:
    return SchemaChangeError(
        f"table {table.name!r}: binlog capture stopped at {at} by a schema change: "
        f"{' '.join(query.split())[:200]}; re-extract the table (dwh extract --mode historical "
        f"--table {table.name}) once its declaration matches"
    )


def _library_rows(event: Any, kind: str, reading: _Reading) -> None:
    """Append the row versions of a row event to `reading`, decoded by mysql-replication: an
    insert's image, an update's after image, a delete's before image as a tombstone (primary key
    and cursor kept, the other columns NULL); a source table without the cursor column gets the
    event's commit time (UTC) as its cursor."""
    names, keep, cursor = reading.names, reading.keep, reading.table.cursor
    committed = None
    for row in event.rows:
        if kind == OP_UPDATE:
            values = row["after_values"]
        elif kind == OP_INSERT:
            values = row["values"]
        else:
            before = row["values"]
            values = {n: before.get(n) if n in keep else None for n in before}
        if cursor not in values:  # no cursor column in the source: the event's time
            if committed is None:
                committed = datetime.fromtimestamp(event.timestamp, UTC).replace(tzinfo=None)
            values = {**values, cursor: committed}
        reading.rows.append([values.get(n) for n in names])
        reading.ops.append(kind)


def _table_map(reading: _Reading, columns: list[Any]) -> None:
    """Take a table map of the table being read: check that it names the declared columns
    (binlog_row_metadata=FULL; the cursor may be missing, a source table without one) and make
    its fast row decoder (None where a column type needs the library's decoding)."""
    present = {c.name for c in columns}
    if sum(n in present for n in reading.names) < len(reading.names) - 1:
        raise SourceError(
            f"table {reading.table.name!r}: the binary log's row events carry no column names "
            "(the server needs binlog_row_metadata=FULL)"
        )
    reading.columns = columns
    index = {c.name: i for i, c in enumerate(columns)}
    declared = [(index[n], n) for n in reading.names if n in index]
    reading.needed = {
        OP_INSERT: declared,
        OP_UPDATE: declared,
        OP_DELETE: [(i, n) for i, n in declared if n in reading.keep],
    }
    reading._absent = {}
    reading.images = RowImages.for_columns(columns, reading.names, reading.keep)
    if reading.images is None:
        log.info("table %s: a column type the fast row decoder does not read; the library decodes", reading.table.name)
    cursor = reading.table.cursor
    reading.fill = None if cursor in present else reading.names.index(cursor)


def adopt_published(store: ObjectStore, table: Table, start: Position) -> Position | None:
    """The end position of the table's newest published batch when it is a binlog batch that
    starts at `start` (a run stopped after its manifest, before the stored position advanced),
    else None. Only the newest batch can be that one: every later run adopts it first."""
    keys = store.glob(layout.manifest_glob(table.name))
    if not keys:
        return None
    newest = max(keys, key=lambda k: k.rsplit("batch=", 1)[-1])
    manifest = store.read_json(newest)
    span = manifest.get("binlog") or {}
    if manifest.get("capture") == "binlog" and "start" in span and Position.from_json(span["start"]).key == start.key:
        return Position.from_json(span["end"])
    return None


def utcnow() -> datetime:
    return datetime.now(UTC)
