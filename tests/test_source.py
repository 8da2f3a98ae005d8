"""The source database: schema, bulk load of the Olist CSVs, and clear errors on bad input."""

from __future__ import annotations

import csv
import secrets
from pathlib import Path

import pymysql
import pytest

from loaders.declarations import declared_tables
from loaders.sources import SourceError, open_source
from loaders.sources.bootstrap import load_folder
from olist_demo.olist_generator import OLIST_FILES


def csv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))[1:]


@pytest.fixture(params=["sqlite", "mysql"])
def source_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'src.sqlite'}"
    return request.getfixturevalue("mysql_url")


def test_bulk_load_reports_and_keeps_every_quirk(source_url, olist_csv, project_dir):
    tables = list(declared_tables(project_dir).values())
    with open_source(source_url, create=True) as db:
        reports = load_folder(db, tables, olist_csv)
        for report in reports:
            table = declared_tables(project_dir)[report.table]
            expected = len(csv_rows(olist_csv / table.csv_file))
            assert report.rows_read == report.rows_stored == expected == db.row_count(table)
        q = db.quote
        # Leading zeros survive; the translation file's BOM and CRLF leave no trace.
        zips = [r[0] for r in db.execute(f"SELECT {q('geolocation_zip_code_prefix')} FROM {q('geolocation')}")]
        assert all(len(z) == 5 for z in zips) and any(z.startswith("0") for z in zips)
        names = [
            r[0]
            for r in db.execute(f"SELECT {q('product_category_name')} FROM {q('product_category_name_translation')}")
        ]
        assert not any("\ufeff" in n for n in names)
        english = [
            r[0]
            for r in db.execute(
                f"SELECT {q('product_category_name_english')} FROM {q('product_category_name_translation')}"
            )
        ]
        assert not any(e.endswith("\r") for e in english)
        # Multi-line Portuguese text with quotes and commas is stored byte for byte.
        source_messages = {r[4] for r in csv_rows(olist_csv / "olist_order_reviews_dataset.csv") if "\n" in r[4]}
        stored = {r[0] for r in db.execute(f"SELECT {q('review_comment_message')} FROM {q('order_reviews')}") if r[0]}
        assert source_messages and source_messages <= stored
        # Empty fields are NULL, not empty strings.
        empty_titles = sum(1 for r in csv_rows(olist_csv / "olist_order_reviews_dataset.csv") if r[3] == "")
        assert (
            db.execute(f"SELECT count(*) FROM {q('order_reviews')} WHERE {q('review_comment_title')} IS NULL")[0][0]
            == empty_titles
        )
        assert (
            db.execute(f"SELECT count(*) FROM {q('order_reviews')} WHERE {q('review_comment_title')} = ''")[0][0] == 0
        )
        # Money keeps its exact value.
        first_item = csv_rows(olist_csv / "olist_order_items_dataset.csv")[0]
        price = db.execute(
            f"SELECT {q('price')} FROM {q('order_items')} "
            f"WHERE {q('order_id')} = '{first_item[0]}' AND {q('order_item_id')} = {int(first_item[1])}"
        )[0][0]
        assert f"{float(price):.2f}" == f"{float(first_item[5]):.2f}"


def test_cursor_column_is_kept_by_the_database(source_url, olist_csv, project_dir):
    tables = declared_tables(project_dir)
    with open_source(source_url, create=True) as db:
        load_folder(db, [tables["orders"]], olist_csv)
        q = db.quote
        order_id = db.execute(f"SELECT {q('order_id')} FROM {q('orders')} ORDER BY {q('order_id')} LIMIT 1")[0][0]
        before = db.execute(f"SELECT {q('updated_at')} FROM {q('orders')} WHERE {q('order_id')} = '{order_id}'")[0][0]
        import time

        time.sleep(0.01)
        db.execute(f"UPDATE {q('orders')} SET {q('order_status')} = 'canceled' WHERE {q('order_id')} = '{order_id}'")
        after = db.execute(f"SELECT {q('updated_at')} FROM {q('orders')} WHERE {q('order_id')} = '{order_id}'")[0][0]
        assert str(after) > str(before)


def test_zero_dates_become_null(source_url, csv_copy, project_dir):
    path = csv_copy / "olist_orders_dataset.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[1].rstrip("\n").split(",")
    fields[4] = "0000-00-00 00:00:00"  # order_approved_at
    lines[1] = ",".join(fields) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    with open_source(source_url, create=True) as db:
        load_folder(db, [declared_tables(project_dir)["orders"]], csv_copy)
        q = db.quote
        value = db.execute(f"SELECT {q('order_approved_at')} FROM {q('orders')} WHERE {q('order_id')} = '{fields[0]}'")[
            0
        ][0]
        assert value is None


def test_wrong_header_names_the_file_and_loads_nothing(source_url, csv_copy, project_dir):
    path = csv_copy / "olist_sellers_dataset.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("seller_city", "city", 1), encoding="utf-8")
    tables = list(declared_tables(project_dir).values())
    with open_source(source_url, create=True) as db:
        with pytest.raises(SourceError, match=r"olist_sellers_dataset\.csv: wrong header for table 'sellers'"):
            load_folder(db, tables, csv_copy)
        assert not any(db.table_exists(t) for t in tables)  # checked before anything is written


def test_missing_file_is_named(source_url, csv_copy, project_dir):
    (csv_copy / "olist_order_payments_dataset.csv").unlink()
    with (
        open_source(source_url, create=True) as db,
        pytest.raises(SourceError, match="missing file.*olist_order_payments_dataset.csv"),
    ):
        load_folder(db, list(declared_tables(project_dir).values()), csv_copy)


def test_bad_value_rolls_the_table_back(source_url, csv_copy, project_dir):
    path = csv_copy / "olist_order_items_dataset.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[3].rstrip("\n").split(",")
    fields[5] = "12,5x"  # a price that is not a number (quoted so the field count stays right)
    lines[3] = ",".join(fields[:5]) + ',"12.5x",' + fields[-1] + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    table = declared_tables(project_dir)["order_items"]
    with open_source(source_url, create=True) as db:
        with pytest.raises(SourceError, match=r"^olist_order_items_dataset.csv, line 4, column price: '12.5x' is not"):
            load_folder(db, [table], csv_copy)
        assert not db.table_exists(table)  # all or nothing: not even created


def test_unreachable_database_is_one_clear_error_without_the_password():
    password = f"pw-{secrets.token_hex(6)}"  # made at run time: no credential literal in the repository
    with pytest.raises(SourceError) as info:
        open_source(f"mysql://shop:{password}@127.0.0.1:1/olist")
    message = str(info.value)
    assert "cannot connect to the source database" in message
    assert password not in message and "***" in message


def test_unknown_scheme_is_refused():
    with pytest.raises(SourceError, match="DWH_SOURCE_URL"):
        open_source("postgresql://x@localhost/db")


def test_mysql_load_uses_load_data_local_infile(mysql_url, olist_csv, project_dir, monkeypatch):
    seen: list[str] = []
    original = pymysql.cursors.Cursor.execute

    def spy(self, query, args=None):
        seen.append(query)
        return original(self, query, args)

    monkeypatch.setattr(pymysql.cursors.Cursor, "execute", spy)
    with open_source(mysql_url) as db:
        load_folder(db, [declared_tables(project_dir)["sellers"]], olist_csv)
    assert any(q.startswith("LOAD DATA LOCAL INFILE") for q in seen)


def test_header_constants_match_the_declarations(project_dir):
    tables = declared_tables(project_dir)
    for table in tables.values():
        assert tuple(c.name for c in table.csv_columns) == OLIST_FILES[table.csv_file]


@pytest.mark.parametrize("kind", ["int", "hex", "prefixed_ci", "hex_composite"])
def test_split_points_cut_the_key_into_balanced_disjoint_ranges(mysql_url, kind):
    """The parallel ranges of a historical extract are found by index dives only; whatever the
    key type and collation they must cover every row once, and be balanced for even keys."""
    import random

    from loaders.declarations import Column, LogicalType, Table

    rng = random.Random(7)
    keys: list[object]
    if kind == "int":
        column, keys = "INT", [rng.randrange(1, 10_000_000) for _ in range(4000)]
    elif kind.startswith("hex"):
        column, keys = "CHAR(32)", [f"{rng.getrandbits(128):032x}" for _ in range(4000)]
    else:  # a shared prefix, mixed case, under a case-insensitive collation
        column = "VARCHAR(40) COLLATE utf8mb4_general_ci"
        keys = [f"ORD-{rng.choice('aB')}{rng.getrandbits(32):08X}" for _ in range(4000)]
    keys = list(dict.fromkeys(keys))
    # like order_items: the first key column repeats, the second one tells the rows apart
    rows = [(k, n) for k in keys for n in range(1 + (kind == "hex_composite") * (str(k).count("a") % 3))]
    table = Table(
        "split_probe",
        "split_probe.csv",
        (
            Column("id", LogicalType.parse("varchar(40)")),
            Column("n", LogicalType.parse("integer")),
            Column("updated_at", LogicalType.parse("timestamp")),
        ),
        ("id", "n"),
        "updated_at",
        "id",
    )
    with open_source(mysql_url) as db:
        with db.transaction():
            db.execute(f"CREATE TABLE split_probe (id {column}, n INT, updated_at DATETIME, PRIMARY KEY (id, n))")
            for i in range(0, len(rows), 500):
                chunk = rows[i : i + 500]
                db.execute(
                    "INSERT INTO split_probe (id, n) VALUES " + ", ".join(["(%s, %s)"] * len(chunk)),
                    [v for row in chunk for v in row],
                )
        for parts in (2, 3, 4):
            points = db.split_points(table, parts)
            assert len(points) == parts - 1
            if kind.startswith("hex") and parts == 2:  # 16 leading characters, evenly used
                assert str(points[0]).startswith("8")
            edges = [None, *points, None]
            counts = []
            for low, high in zip(edges, edges[1:], strict=False):
                where = " AND ".join(
                    [*(["id >= %s"] if low is not None else []), *(["id < %s"] if high is not None else [])]
                )
                params = [v for v in (low, high) if v is not None]
                counts.append(db.execute(f"SELECT count(*) FROM split_probe WHERE {where}", params)[0][0])
            assert sum(counts) == len(rows)  # disjoint and complete
            assert min(counts) > 0.6 * len(rows) / parts, (parts, counts)  # balanced for even keys
