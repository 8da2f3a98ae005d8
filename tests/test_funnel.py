"""The funnel lake: landing CSV -> year/month Parquet, idempotent, with rejects and clear refusals."""

from __future__ import annotations

import collections
import csv
import threading
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loaders.config import PROJECT_DIR, Settings
from loaders.declarations import funnel_declaration
from loaders.funnel import (
    FunnelError,
    convert_file,
    convert_pending,
    lake_partitions,
    land_files,
)
from loaders.funnel import validate as funnel_validate
from loaders.funnel import writers as funnel_writers
from loaders.layout import FUNNEL_LAKE
from loaders.store import ObjectStore
from olist_demo.funnel_generator import generate_funnel

DECLARATION = funnel_declaration(PROJECT_DIR)
SCHEMA = DECLARATION.arrow_schema()
HEADER = ",".join(DECLARATION.header) + "\r\n"


@pytest.fixture(scope="module")
def funnel_files(olist_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("funnel")
    generate_funnel(out, olist_csv, rows_per_file=30_000, years=(2016, 2017), seed=11)
    return out


@pytest.fixture
def lake(settings: Settings) -> tuple[Settings, ObjectStore]:
    s = settings.with_(funnel_block_bytes=256 * 1024)  # several blocks per file, as for big files
    return s, ObjectStore(s.store_url, s)


def expected_counts(path: Path) -> collections.Counter:
    """Computed independently of the converter: the csv module and datetime.strptime."""
    counts: collections.Counter = collections.Counter()
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            at = datetime.strptime(row["event_timestamp"], "%m/%d/%Y %I:%M %p")
            counts[(at.year, at.month, row["event_type"])] += 1
    return counts


def lake_counts(store: ObjectStore, where: str = "") -> collections.Counter:
    rows = duckdb.execute(
        f"SELECT year, month, event_type, count(*) FROM read_parquet('{store.uri(FUNNEL_LAKE)}/*/*/*.parquet', "
        f"hive_partitioning = true) {where} GROUP BY ALL"
    ).fetchall()
    return collections.Counter({(y, m, e): n for y, m, e, n in rows})


def test_partition_counts_equal_counts_from_the_csv(lake, funnel_files):
    s, store = lake
    land_files(store, [funnel_files / "2016_funnel.csv"])
    (report,) = convert_pending(s, store)
    expected = expected_counts(funnel_files / "2016_funnel.csv")
    assert report.rows_read == report.rows_written == sum(expected.values()) == 30_000
    assert lake_counts(store) == expected
    assert {f"year={y}/month={m}" for y, m, _ in expected} == set(report.partitions)
    assert lake_partitions(store) == sorted({(y, m) for y, m, _ in expected})
    # the random ids are stored plain, every other column with DWH_PARQUET_COMPRESSION (snappy)
    column = pq.ParquetFile(store.full(report.outputs[0])).metadata.row_group(0).column
    codecs = {column(i).path_in_schema: column(i).compression for i in range(8)}
    assert codecs["session_id"] == codecs["userid"] == "UNCOMPRESSED"
    assert {codecs[c] for c in ("event_timestamp", "event_type", "product_id", "category_id")} == {"SNAPPY"}


def test_afternoon_events_keep_their_hour(lake, tmp_path):
    """Regression for the seed's Spark job, which read the 12-hour clock as a 24-hour one."""
    s, store = lake
    path = tmp_path / "clock_funnel.csv"
    rows = [("01:30 PM", 13, 30), ("12:05 AM", 0, 5), ("12:45 PM", 12, 45), ("11:59 PM", 23, 59), ("09:28 PM", 21, 28)]
    path.write_text(
        HEADER
        + "".join(
            f"s{i:035d},10/14/2016 {clock},view,{'c' * 32},{'p' * 32},cama_mesa_banho\r\n"
            for i, (clock, _, _) in enumerate(rows)
        ),
        encoding="utf-8",
    )
    land_files(store, [path])
    convert_file(s, store, "clock_funnel.csv")
    got = duckdb.execute(
        f"SELECT session_id, hour(event_timestamp), minute(event_timestamp) FROM "
        f"read_parquet('{store.uri(FUNNEL_LAKE)}/*/*/*.parquet') ORDER BY 1"
    ).fetchall()
    assert [(h, m) for _, h, m in got] == [(h, m) for _, h, m in rows]


def test_converting_twice_keeps_one_copy_and_other_files_stay(lake, funnel_files):
    s, store = lake
    land_files(store, [funnel_files / "2016_funnel.csv", funnel_files / "2017_funnel.csv"])
    convert_pending(s, store)
    once = lake_counts(store)
    again = convert_pending(s, store)
    assert {r.status for r in again} == {"skipped"}  # unchanged files are not converted again
    convert_file(s, store, "2016_funnel.csv", force=True)  # what the S3 trigger does on a re-upload
    assert lake_counts(store) == once
    expected = expected_counts(funnel_files / "2016_funnel.csv") + expected_counts(funnel_files / "2017_funnel.csv")
    assert once == expected
    # A second file covering the same months: both stay.
    other = funnel_files.parent / "extra" / "2016_funnel_late.csv"
    other.parent.mkdir(exist_ok=True)
    other.write_bytes((funnel_files / "2016_funnel.csv").read_bytes())
    land_files(store, [other])
    convert_pending(s, store)
    assert sum(lake_counts(store, "WHERE year = 2016").values()) == 2 * 30_000


def test_bad_rows_go_to_the_rejects_with_line_and_reason(lake, funnel_files, tmp_path):
    s, store = lake
    lines = (funnel_files / "2017_funnel.csv").read_bytes().split(b"\r\n")
    good = lines[1].decode()
    fields = good.split(",")
    lines[5] = good.replace(fields[1], "2017-03-01 10:00").encode()  # bad timestamp (line 6)
    lines[10] = good.replace(fields[2], "wishlist").encode()  # unknown event type (line 11)
    lines[20] = b",".join(lines[20].split(b",")[:4])  # wrong column count (line 21)
    lines[30] = lines[30][:40] + b"\xff\xfe" + lines[30][42:]  # invalid UTF-8 (line 31)
    path = tmp_path / "dirty_funnel.csv"
    path.write_bytes(b"\r\n".join(lines))
    land_files(store, [path])
    (report,) = convert_pending(s, store)
    assert report.rows_read == 30_000 and report.rows_written == 30_000 - 4
    assert report.rejects == {"bad_timestamp": 1, "unknown_event_type": 1, "wrong_column_count": 1, "invalid_utf8": 1}
    with open(store.full(report.rejects_file), newline="", encoding="utf-8") as handle:
        rejected = {(int(r["line"]), r["reason"]) for r in csv.DictReader(handle)}
    assert rejected == {
        (6, "bad_timestamp"),
        (11, "unknown_event_type"),
        (21, "wrong_column_count"),
        (31, "invalid_utf8"),
    }
    assert sum(lake_counts(store).values()) == 30_000 - 4


def test_too_many_rejects_fail_and_leave_the_lake_as_it_was(lake, funnel_files, tmp_path):
    s, store = lake
    land_files(store, [funnel_files / "2016_funnel.csv"])
    convert_pending(s, store)
    before = lake_counts(store)
    text = (funnel_files / "2016_funnel.csv").read_text(encoding="utf-8").replace(" PM,", " XM,")
    path = tmp_path / "2016_funnel.csv"
    path.write_text(text, encoding="utf-8")
    land_files(store, [path])  # the vendor re-sends a broken version of the same file
    with pytest.raises(FunnelError, match=r"2016_funnel.csv: .* rows rejected .*DWH_FUNNEL_MAX_REJECT_RATIO"):
        convert_file(s, store, "2016_funnel.csv")
    assert lake_counts(store) == before
    assert store.glob("tmp/funnel/*") == []


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"order_id,customer_id\r\n1,2\r\n", "header"),
        (bytes(range(256)) * 10, "binary"),
        ("sessão_id,event_timestamp\r\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_a_file_that_is_not_a_funnel_file_is_refused(lake, tmp_path, content, reason):
    s, store = lake
    path = tmp_path / "wrong_funnel.csv"
    path.write_bytes(content)
    land_files(store, [path])
    with pytest.raises(FunnelError, match=f"wrong_funnel.csv is not a funnel file.*{reason}"):
        convert_file(s, store, "wrong_funnel.csv")
    assert store.glob(f"{FUNNEL_LAKE}/*") == [] and store.glob("state/funnel/*") == []


def test_missing_landing_file_is_named(lake):
    s, store = lake
    with pytest.raises(FunnelError, match="funnel file not found: .*nope.csv"):
        convert_file(s, store, "nope.csv")


def lake_rows(store: ObjectStore) -> list[tuple]:
    return duckdb.execute(
        f"SELECT session_id, event_timestamp, event_type, userid, product_id, category_id, source_file, "
        f"converted_at FROM read_parquet('{store.uri(FUNNEL_LAKE)}/*/*/*.parquet') ORDER BY session_id"
    ).fetchall()


def csv_rows(path: Path) -> list[tuple]:
    """Computed independently of the converter: the csv module and datetime.strptime."""
    with open(path, newline="", encoding="utf-8") as handle:
        return sorted(
            (
                r["session_id"],
                datetime.strptime(r["event_timestamp"], "%m/%d/%Y %I:%M %p"),
                r["event_type"],
                r["userid"],
                r["product_id"],
                r["category_id"] or None,
            )
            for r in csv.DictReader(handle)
        )


def parse_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("funnel-parse", "funnel-write"))]


def test_every_value_arrives_across_many_blocks(settings, funnel_files):
    """Small blocks: the read buffer is reused ~70 times, rows are split by month and regrouped."""
    s = settings.with_(funnel_block_bytes=64 * 1024)
    store = ObjectStore(s.store_url, s)
    land_files(store, [funnel_files / "2017_funnel.csv"])
    pool = pa.default_memory_pool().backend_name
    report = convert_file(s, store, "2017_funnel.csv")
    assert pa.default_memory_pool().backend_name == pool  # the conversion's pool is not left behind
    got = lake_rows(store)
    assert [r[:6] for r in got] == csv_rows(funnel_files / "2017_funnel.csv")
    assert {r[6] for r in got} == {"2017_funnel.csv"} and len({r[7] for r in got}) == 1
    assert report.rows_written == len(got) == 30_000 and report.bytes_read == (
        (funnel_files / "2017_funnel.csv").stat().st_size - len(HEADER)
    )
    for path in store.glob(f"{FUNNEL_LAKE}/*/*/*.parquet"):
        assert pq.read_schema(store.full(path)).remove_metadata() == SCHEMA


def test_lines_longer_than_a_block_and_no_final_line_break(lake, tmp_path):
    """A block smaller than one line (the buffer grows), rejects numbered across blocks, a last
    line without a line break, and the 12-hour clock at its edges."""
    s, store = lake
    s = s.with_(funnel_block_bytes=40, funnel_max_reject_ratio=0.5)
    clocks = [
        "12:00 AM",
        "12:59 AM",
        "01:00 AM",
        "11:59 AM",
        "12:00 PM",
        "12:30 PM",
        "01:00 PM",
        "11:59 PM",
        "13:00 PM",
        "12:60 AM",
        "00:30 AM",
        "day",
    ]
    lines = [f"s{i:035d},02/29/2016 {clock},view,{'c' * 32},{'p' * 32},\r\n" for i, clock in enumerate(clocks)]
    lines[11] = f"s{11:035d},02/30/2016 10:00 AM,view,{'c' * 32},{'p' * 32},\r\n"  # no 30 February (line 14)
    lines.append(f"s{12:035d},02/29/2017 10:00 AM,view,{'c' * 32},{'p' * 32},\r\n")  # nor 29 February 2017
    lines.append(f"s{13:035d},3/1/2016 9:05 pm,view,{'c' * 32},{'p' * 32},\r\n")  # not zero-padded: valid
    lines.insert(3, f"s{99:035d},02/29/2016 10:00 AM,view,,{'p' * 32},cama_mesa_banho\r\n")  # line 5
    path = tmp_path / "edges_funnel.csv"
    path.write_text(HEADER + "".join(lines).removesuffix("\r\n"), encoding="utf-8")
    land_files(store, [path])
    report = convert_file(s, store, "edges_funnel.csv")
    with open(store.full(report.rejects_file), newline="", encoding="utf-8") as handle:
        rejected = {(int(r["line"]), r["reason"]) for r in csv.DictReader(handle)}
    assert rejected == {
        (5, "empty_userid"),
        (11, "bad_timestamp"),
        (12, "bad_timestamp"),
        (13, "bad_timestamp"),
        (14, "bad_timestamp"),
        (15, "bad_timestamp"),
    }
    stamps = [t for _, t, *_ in lake_rows(store)]
    assert [(t.hour, t.minute) for t in stamps[:8]] == [
        (0, 0),
        (0, 59),
        (1, 0),
        (11, 59),
        (12, 0),
        (12, 30),
        (13, 0),
        (23, 59),
    ]
    assert {t.date() for t in stamps[:8]} == {datetime(2016, 2, 29).date()}
    assert stamps[8] == datetime(2016, 3, 1, 21, 5)
    assert report.rows_read == 15 and report.rows_written == 9


def test_a_failure_while_parsing_leaves_the_lake_as_it_was(lake, funnel_files, monkeypatch):
    s, store = lake
    land_files(store, [funnel_files / "2016_funnel.csv"])
    validate, calls = funnel_validate.validate, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("parser broke")
        return validate(*args, **kwargs)

    monkeypatch.setattr(funnel_validate, "validate", failing)
    with pytest.raises(RuntimeError, match="parser broke"):
        convert_file(s, store, "2016_funnel.csv")
    assert store.glob(f"{FUNNEL_LAKE}/*") == [] and store.glob("tmp/funnel/*") == []
    assert parse_threads() == []


@pytest.mark.parametrize("step", ["add", "_write"])
def test_a_failing_writer_stops_the_other_threads(lake, funnel_files, monkeypatch, step):
    """The buffering (calling thread) or a row group's encoding (writer threads) fails."""
    s, store = lake
    s = s.with_(funnel_block_bytes=8 * 1024)  # many blocks: the parsing thread waits on a full queue
    land_files(store, [funnel_files / "2016_funnel.csv"])

    def failing(self, *args):
        raise OSError("disk full")

    monkeypatch.setattr(funnel_writers.PartitionWriters, step, failing)
    with pytest.raises(OSError, match="disk full"):
        convert_file(s, store, "2016_funnel.csv")
    assert parse_threads() == []
    assert store.glob(f"{FUNNEL_LAKE}/*") == [] and store.glob("tmp/funnel/*") == []


def test_quoted_values_are_read_as_csv(lake, tmp_path):
    """The vendor never quotes, but a quoted value is read as CSV, in a block with unquoted ones."""
    s, store = lake
    s = s.with_(funnel_block_bytes=400)  # about three lines a block: quoted and unquoted blocks
    rows = [f"s{i:035d},10/14/2016 09:28 PM,view,{'c' * 32},{'p' * 32},cama_mesa_banho\r\n" for i in range(9)]
    rows[4] = f'"s{4:035d}",10/14/2016 09:28 PM,"view",{"c" * 32},{"p" * 32},"cama, mesa e ""banho"""\r\n'
    path = tmp_path / "quoted_funnel.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    land_files(store, [path])
    report = convert_file(s, store, "quoted_funnel.csv")
    assert report.rows_written == 9 and report.rejects == {}
    got = lake_rows(store)
    assert got[4][0] == f"s{4:035d}" and got[4][2] == "view" and got[4][5] == 'cama, mesa e "banho"'
    assert {r[5] for i, r in enumerate(got) if i != 4} == {"cama_mesa_banho"}
