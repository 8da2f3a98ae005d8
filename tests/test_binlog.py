"""Binary-log capture (DWH_CAPTURE=binlog, issue 13) against a real MariaDB with a row-based
binary log (the `binlog_server` fixture: olist_demo/mariadb_server.py). Nothing is mocked.

Staging is compared with the source independently: the source's rows read with plain SQL, the
staging models built by dbt, every declared column compared row for row.
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from decimal import Decimal

import pymysql
import pytest

from loaders import pipeline
from loaders.config import PROJECT_DIR
from loaders.declarations import declared_tables
from loaders.extract.binlog import Position, PositionLostError
from loaders.extract.capture import stored_position
from loaders.runs import RunFailed
from loaders.sources import open_source
from loaders.store import ObjectStore

from .helpers import fill_source, quiet, warehouse_rows

pytestmark = pytest.mark.slow

TABLES = ["orders", "order_items", "sellers"]
STATUSES = ["created", "approved", "invoiced", "processing", "shipped", "delivered", "canceled"]
# staging column -> source column, per table (the staging models rename some)
STAGED = {
    "orders": (
        "stg_olist__orders",
        ["order_id", "customer_id", "order_status", "purchased_at", "source_updated_at"],
        ["order_id", "customer_id", "order_status", "order_purchase_timestamp", "updated_at"],
    ),
    "order_items": (
        "stg_olist__order_items",
        ["order_id", "order_item_id", "product_id", "seller_id", "price", "freight_value", "source_updated_at"],
        ["order_id", "order_item_id", "product_id", "seller_id", "price", "freight_value", "updated_at"],
    ),
    "sellers": (
        "stg_olist__sellers",
        ["seller_id", "zip_code_prefix", "city", "state"],
        ["seller_id", "seller_zip_code_prefix", "seller_city", "seller_state"],
    ),
}


@pytest.fixture
def binlog_settings(settings, binlog_url, olist_csv):
    """Settings on a fresh binlog-server database holding orders, order_items and sellers; the
    sellers' source table has no cursor column at all (binlog capture fills the declared cursor
    with the snapshot's or the change's time)."""
    s = settings.with_(source_url=binlog_url, capture="binlog")
    fill_source(s, olist_csv, TABLES)
    _sql(s, "ALTER TABLE sellers DROP COLUMN updated_at")
    return s


def _connect(settings) -> pymysql.Connection:
    with open_source(settings.source_url) as db:
        p = db._parts
    return pymysql.connect(host=p.hostname, port=p.port, user="root", database=p.path.lstrip("/"), autocommit=True)


def _sql(settings, sql: str, params: tuple = ()) -> list[tuple]:
    conn = _connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def _run(settings, tables=TABLES, build: bool = True) -> None:
    pipeline.extract(settings, quiet(), "auto", tables)
    pipeline.load(settings, quiet(), tables)
    if build:
        _build(settings, tables)


def _build(settings, tables=TABLES) -> None:
    """The staging models of `tables` and their own tests (not the relationships to others)."""
    models = " ".join(STAGED[t][0] for t in tables)
    pipeline.build(settings, quiet(), ["--select", models, "--indirect-selection", "cautious"], check_freshness=False)


def _normal(value):
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.01")))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value


def _assert_staging_equals_source(settings, tables=TABLES) -> None:
    for table in tables:
        model, staged_cols, source_cols = STAGED[table]
        key = ", ".join(source_cols[: len(declared_tables(settings.project_dir)[table].primary_key)])
        source = _sql(settings, f"SELECT {', '.join(source_cols)} FROM {table} ORDER BY {key}")
        staging = warehouse_rows(
            settings, f"SELECT {', '.join(staged_cols)} FROM staging.{model} ORDER BY {', '.join(staged_cols[:2])}"
        )
        source_rows = sorted(tuple(_normal(v) for v in r) for r in source)
        staging_rows = sorted(tuple(_normal(v) for v in r) for r in staging)
        missing = set(source_rows) - set(staging_rows)
        extra = set(staging_rows) - set(source_rows)
        assert not missing and not extra, f"{table}: missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}"
        assert len(staging_rows) == len(source_rows)


class Shop:
    """Random changes to the source: inserts, updates with and without a cursor bump, deletes,
    re-inserts of deleted keys, a seller table without a cursor column."""

    def __init__(self, settings, seed: int):
        self.settings, self.rng = settings, random.Random(seed)
        self.conn = _connect(settings)

    def orders(self) -> list[str]:
        return [r[0] for r in self._q("SELECT order_id FROM orders ORDER BY order_id")]

    def _q(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def step(self) -> str:
        kind = self.rng.choice(
            ["insert", "update", "update_same_cursor", "delete_order", "delete_item", "seller", "reinsert"]
        )
        orders = self.orders()
        order = self.rng.choice(orders)
        if kind == "insert":
            new = secrets.token_hex(16)
            customer = self._q("SELECT customer_id FROM orders WHERE order_id = %s", (order,))[0][0]
            self._q(
                "INSERT INTO orders (order_id, customer_id, order_status, order_purchase_timestamp) "
                "VALUES (%s, %s, 'created', '2018-09-01 10:00:00')",
                (new, customer),
            )
            item = self._q("SELECT product_id, seller_id FROM order_items LIMIT 1")[0]
            self._q(
                "INSERT INTO order_items (order_id, order_item_id, product_id, seller_id, price, freight_value) "
                "VALUES (%s, 1, %s, %s, %s, 1.50)",
                (new, item[0], item[1], Decimal(self.rng.randint(100, 99999)) / 100),
            )
        elif kind == "update":
            self._q("UPDATE orders SET order_status = %s WHERE order_id = %s", (self.rng.choice(STATUSES), order))
            self._q("UPDATE order_items SET price = price + 1 WHERE order_id = %s", (order,))
        elif kind == "update_same_cursor":  # an ORM writing updated_at back unchanged
            self._q(
                "UPDATE orders SET order_status = %s, updated_at = updated_at WHERE order_id = %s",
                (self.rng.choice(STATUSES), order),
            )
        elif kind == "delete_order":
            self._q("DELETE FROM order_items WHERE order_id = %s", (order,))
            self._q("DELETE FROM orders WHERE order_id = %s", (order,))
        elif kind == "delete_item":
            self._q("DELETE FROM order_items WHERE order_id = %s ORDER BY order_item_id DESC LIMIT 1", (order,))
        elif kind == "seller":
            seller = self._q("SELECT seller_id FROM sellers ORDER BY rand() LIMIT 1")[0][0]
            action = self.rng.choice(["city", "delete"])
            if action == "city":
                self._q("UPDATE sellers SET seller_city = %s WHERE seller_id = %s", (secrets.token_hex(4), seller))
            else:
                self._q("DELETE FROM sellers WHERE seller_id = %s", (seller,))
                self._q(
                    "INSERT INTO sellers (seller_id, seller_zip_code_prefix, seller_city, seller_state) "
                    "VALUES (%s, '01001', 'sao paulo', 'SP')",
                    (secrets.token_hex(16),),
                )
        else:  # delete an order and put it back with other content, in one transaction
            self.conn.begin()
            row = self._q("SELECT customer_id FROM orders WHERE order_id = %s", (order,))[0]
            self._q("DELETE FROM order_items WHERE order_id = %s", (order,))
            self._q("DELETE FROM orders WHERE order_id = %s", (order,))
            self._q(
                "INSERT INTO orders (order_id, customer_id, order_status, order_purchase_timestamp) "
                "VALUES (%s, %s, 'approved', '2018-09-02 10:00:00')",
                (order, row[0]),
            )
            self.conn.commit()
        return kind


def test_binlog_server_has_a_row_based_log(binlog_server):
    variables = dict(
        binlog_server.execute(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
            "('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata')"
        )
    )
    assert variables == {
        "log_bin": "ON",
        "binlog_format": "ROW",
        "binlog_row_image": "FULL",
        "binlog_row_metadata": "FULL",
    }


def test_randomized_changes_reach_staging_every_run(binlog_settings):
    """Inserts, updates, unchanged cursors, deletes, re-inserts, a late commit and a table whose
    cursor never moves: after every binlog run staging equals the source, with no verify."""
    s = binlog_settings
    _run(s)
    _assert_staging_equals_source(s)
    assert stored_position(ObjectStore(s.store_url, s), declared_tables(s.project_dir)["orders"]) is not None
    shop = Shop(s, seed=13)
    late = _connect(s)
    kinds: list[str] = []
    for run in range(3):
        for _ in range(25):
            kinds.append(shop.step())
        if run == 0:  # a transaction that commits after the next run has read the log
            late.begin()
            with late.cursor() as cur:
                cur.execute(
                    "UPDATE orders SET order_status = 'unavailable', order_approved_at = '2001-02-03 04:05:06' "
                    "ORDER BY order_id LIMIT 1"
                )
        _run(s)
        _assert_staging_equals_source(s)  # the open transaction is not in the source yet
        if run == 0:
            late.commit()  # its cursor is older than this run's upper bound
    late.close()
    # the late commit arrived, though its cursor is older than the run that could not see it
    late_rows = "SELECT count(*) FROM staging.stg_olist__orders WHERE approved_at = '2001-02-03 04:05:06'"
    assert warehouse_rows(s, late_rows) == [(1,)]
    assert {"update_same_cursor", "delete_order", "seller"} <= set(kinds)
    ops = dict(warehouse_rows(s, "SELECT _op, count(*) FROM raw.orders GROUP BY _op"))
    assert ops.get("d", 0) > 0 and ops.get("u", 0) > 0 and ops.get("c", 0) > 0 and ops.get("r", 0) > 0


@pytest.mark.parametrize("failure", ["during_parts", "after_manifest", "between_tables", "during_load"])
def test_failure_at_any_point_then_rerun_loses_and_duplicates_nothing(binlog_settings, monkeypatch, failure):
    """One pass over the log writes every table's batch; a process stopped while parts are written,
    after a manifest before its position, between two tables' publications (one table's position
    ahead of the other's: the rerun's pass starts at the earlier one) or during the load, then
    rerun after more changes, loses and duplicates nothing."""
    s = binlog_settings
    _run(s, build=False)
    shop = Shop(s, seed=len(failure))
    for _ in range(30):
        shop.step()
    changes_before = _raw_change_count(s)
    from loaders.extract import capture
    from loaders.load import loader

    class Killed(BaseException):
        """Stands for SIGKILL: nothing after it runs."""

    if failure == "during_parts":
        real = capture.PartWriter.write

        def write(self, batch):
            real(self, batch)
            if self.folder.startswith("olist/order_items"):  # after a part's first rows are written
                raise Killed

        monkeypatch.setattr(capture.PartWriter, "write", write)
    elif failure == "after_manifest":
        real_write = capture.write_watermark

        def stop_before_position(store, table, *args, **kwargs):
            if table.name == "orders":
                raise Killed
            real_write(store, table, *args, **kwargs)

        monkeypatch.setattr(capture, "write_watermark", stop_before_position)
    elif failure == "between_tables":
        real_manifests = capture.write_manifests

        def stop_at_second_table(store, folder, *args, **kwargs):
            if folder.startswith("olist/order_items"):  # orders is published and its position moved
                raise Killed
            real_manifests(store, folder, *args, **kwargs)

        monkeypatch.setattr(capture, "write_manifests", stop_at_second_table)
    else:
        real_load = loader.load_batch

        def load_batch(wh, table, *args, **kwargs):
            if table.name == "order_items":
                raise Killed
            return real_load(wh, table, *args, **kwargs)

        monkeypatch.setattr(loader, "load_batch", load_batch)
    with pytest.raises(Killed):
        _run(s, build=False)
    monkeypatch.undo()
    if failure == "between_tables":
        store, declared = ObjectStore(s.store_url, s), declared_tables(s.project_dir)
        ahead, behind = (stored_position(store, declared[t]) for t in ("orders", "order_items"))
        assert ahead is not None and behind is not None and ahead.key > behind.key
    for _ in range(10):
        shop.step()
    _run(s)  # the rerun
    _assert_staging_equals_source(s)
    # every change of the log is in raw exactly once: no batch read the same range twice
    published = _published_binlog_rows(s)
    assert _raw_change_count(s) - changes_before == published
    for table in TABLES:
        spans = sorted(
            (Position.from_json(m["binlog"]["start"]).key, Position.from_json(m["binlog"]["end"]).key)
            for m in _binlog_manifests(s, table)
        )
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, f"{table}: two batches overlap in the log"


def _binlog_manifests(settings, table: str) -> list[dict]:
    from loaders import layout

    store = ObjectStore(settings.store_url, settings)
    manifests = [store.read_json(k) for k in store.glob(layout.manifest_glob(table))]
    return [m for m in manifests if m.get("capture") == "binlog" and "start" in m.get("binlog", {})]


def _published_binlog_rows(settings) -> int:
    return sum(m["row_count"] for t in TABLES for m in _binlog_manifests(settings, t))


def _raw_change_count(settings) -> int:
    total = 0
    for table in TABLES:
        if warehouse_rows(
            settings,
            f"SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' AND table_name = '{table}'",
        ) == [(1,)]:
            total += warehouse_rows(settings, f"SELECT count(*) FROM raw.{table} WHERE _op <> 'r'")[0][0]
    return total


def test_snapshot_position_handover_under_concurrent_writes(binlog_settings):
    """A historical extract taken while a writer keeps changing orders, then the first binlog
    run: staging equals the source, nothing missed, nothing doubled."""
    s = binlog_settings
    shop = Shop(s, seed=99)
    stop = threading.Event()
    done: list[str] = []

    def writer() -> None:
        while not stop.is_set():
            done.append(shop.step())

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.3)
        pipeline.extract(s, quiet(), "historical", TABLES)
    finally:
        stop.set()
        thread.join()
    assert len(done) > 3  # the writer did change the tables during the snapshot
    _run(s)
    _assert_staging_equals_source(s)
    assert warehouse_rows(s, "SELECT count(*) - count(DISTINCT order_id) FROM staging.stg_olist__orders") == [(0,)]


def test_schema_change_stops_the_table_and_loses_nothing(binlog_settings):
    s = binlog_settings
    _run(s, build=False)
    _sql(s, "UPDATE orders SET order_approved_at = '2001-01-01' ORDER BY order_id LIMIT 1")
    _sql(s, "ALTER TABLE orders ADD COLUMN note VARCHAR(10) NULL")
    _sql(s, "UPDATE orders SET order_approved_at = '2002-02-02' ORDER BY order_id DESC LIMIT 1")
    lines: list[str] = []
    rep = quiet()
    rep.echo = lines.append
    with pytest.raises(
        Exception, match=r"table 'orders': binlog capture stopped at .* ALTER TABLE orders ADD COLUMN note"
    ):
        pipeline.extract(s, rep, "auto", ["orders"])
    pipeline.load(s, quiet(), ["orders"])
    marks = dict(
        warehouse_rows(s, "SELECT CAST(order_approved_at AS DATE)::VARCHAR, count(*) FROM raw.orders GROUP BY 1")
    )
    assert marks.get("2001-01-01") == 1 and "2002-02-02" not in marks  # before published, after not read
    store = ObjectStore(s.store_url, s)
    held = stored_position(store, declared_tables(s.project_dir)["orders"])
    with pytest.raises(Exception, match="schema change"):  # the next run stops at the same place
        pipeline.extract(s, quiet(), "auto", ["orders"])
    assert stored_position(store, declared_tables(s.project_dir)["orders"]) == held
    # once handled (here: the column dropped again and a new snapshot), the change after it arrives
    _sql(s, "ALTER TABLE orders DROP COLUMN note")
    pipeline.extract(s, quiet(), "historical", ["orders"])
    _run(s, ["orders"])
    _assert_staging_equals_source(s, ["orders"])


def test_schema_change_stops_only_its_table_in_the_shared_pass(binlog_settings):
    """The tables share one pass over the log: an ALTER of orders stops orders there, while
    order_items and sellers read on past it to the run's end."""
    s = binlog_settings
    _run(s, build=False)
    _sql(s, "UPDATE orders SET order_approved_at = '2001-01-01' ORDER BY order_id LIMIT 1")
    _sql(s, "ALTER TABLE orders ADD COLUMN note VARCHAR(10) NULL")
    _sql(s, "UPDATE orders SET order_approved_at = '2002-02-02' ORDER BY order_id DESC LIMIT 1")
    _sql(s, "UPDATE order_items SET price = 12345.67 ORDER BY order_id LIMIT 1")
    _sql(s, "UPDATE sellers SET seller_city = 'after the alter' ORDER BY seller_id LIMIT 1")
    with pytest.raises(RunFailed) as failed:
        pipeline.extract(s, quiet(), "auto", TABLES)
    assert [f.unit for f in failed.value.failures] == ["orders"]
    assert "ALTER TABLE orders ADD COLUMN note" in str(failed.value)
    pipeline.load(s, quiet(), TABLES)
    marks = dict(
        warehouse_rows(s, "SELECT CAST(order_approved_at AS DATE)::VARCHAR, count(*) FROM raw.orders GROUP BY 1")
    )
    assert marks.get("2001-01-01") == 1 and "2002-02-02" not in marks
    assert warehouse_rows(s, "SELECT count(*) FROM raw.order_items WHERE price = 12345.67") == [(1,)]
    assert warehouse_rows(s, "SELECT count(*) FROM raw.sellers WHERE seller_city = 'after the alter'") == [(1,)]
    _build(s, ["order_items", "sellers"])
    _assert_staging_equals_source(s, ["order_items", "sellers"])


def test_partial_row_image_stops_only_its_table(binlog_settings):
    """A session writing MINIMAL row images (the after image holds only the changed column): the
    table stops there with one line naming the absent columns, rather than staging NULLs for them;
    the changes before it are published, the other tables read on, and the next run stops at the
    same place until the table is re-extracted."""
    s = binlog_settings
    _run(s, build=False)
    _sql(s, "UPDATE orders SET order_approved_at = '2001-01-01' ORDER BY order_id LIMIT 1")
    conn = _connect(s)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION binlog_row_image = 'MINIMAL'")
            cur.execute("UPDATE orders SET order_approved_at = '2002-02-02' ORDER BY order_id DESC LIMIT 1")
    finally:
        conn.close()
    _sql(s, "UPDATE order_items SET price = 12345.67 ORDER BY order_id LIMIT 1")
    with pytest.raises(RunFailed) as failed:
        pipeline.extract(s, quiet(), "auto", TABLES)
    assert [f.unit for f in failed.value.failures] == ["orders"]
    message = str(failed.value.failures[0].error)
    assert "partial row image without column(s) order_id, customer_id" in message and "MINIMAL" in message
    assert "\n" not in message
    pipeline.load(s, quiet(), TABLES)
    marks = dict(
        warehouse_rows(s, "SELECT CAST(order_approved_at AS DATE)::VARCHAR, count(*) FROM raw.orders GROUP BY 1")
    )
    assert marks.get("2001-01-01") == 1 and "2002-02-02" not in marks  # before published, the partial not
    assert warehouse_rows(s, "SELECT count(*) FROM raw.orders WHERE order_id IS NULL OR customer_id IS NULL") == [(0,)]
    assert warehouse_rows(s, "SELECT count(*) FROM raw.order_items WHERE price = 12345.67") == [(1,)]
    store = ObjectStore(s.store_url, s)
    held = stored_position(store, declared_tables(s.project_dir)["orders"])
    with pytest.raises(Exception, match="partial row image"):
        pipeline.extract(s, quiet(), "auto", ["orders"])
    assert stored_position(store, declared_tables(s.project_dir)["orders"]) == held
    pipeline.extract(s, quiet(), "historical", ["orders"])
    _run(s, ["orders"])
    _assert_staging_equals_source(s, ["orders"])


def test_statement_logged_change_stops_only_its_table(binlog_settings):
    """A session with binlog_format=STATEMENT logs its UPDATE as a statement, without rows: the
    table's capture stops there with one line (instead of missing the change), the changes
    before it are published, the other tables read on, and a re-extract recovers."""
    s = binlog_settings
    _run(s, build=False)
    _sql(s, "UPDATE orders SET order_approved_at = '2001-01-01' ORDER BY order_id LIMIT 1")
    conn = _connect(s)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION binlog_format = 'STATEMENT'")
            cur.execute("UPDATE orders SET order_delivered_customer_date = '2003-03-03' ORDER BY order_id DESC LIMIT 1")
        conn.commit()
    finally:
        conn.close()
    _sql(s, "UPDATE order_items SET price = 12345.67 ORDER BY order_id LIMIT 1")
    with pytest.raises(RunFailed) as failed:
        pipeline.extract(s, quiet(), "auto", TABLES)
    assert [f.unit for f in failed.value.failures] == ["orders"]
    message = str(failed.value.failures[0].error)
    assert "logged as a statement" in message and "order_delivered_customer_date = '2003-03-03'" in message
    assert "binlog_format=ROW" in message and "--table orders" in message and "\n" not in message
    pipeline.load(s, quiet(), TABLES)
    marks = dict(
        warehouse_rows(s, "SELECT CAST(order_approved_at AS DATE)::VARCHAR, count(*) FROM raw.orders GROUP BY 1")
    )
    assert marks.get("2001-01-01") == 1  # the change before the statement is published
    marks = dict(
        warehouse_rows(
            s, "SELECT CAST(order_delivered_customer_date AS DATE)::VARCHAR, count(*) FROM raw.orders GROUP BY 1"
        )
    )
    assert "2003-03-03" not in marks
    assert warehouse_rows(s, "SELECT count(*) FROM raw.order_items WHERE price = 12345.67") == [(1,)]
    pipeline.extract(s, quiet(), "historical", ["orders"])
    _run(s, ["orders"])
    _assert_staging_equals_source(s, ["orders"])


def test_compressed_binary_log_is_refused(binlog_settings):
    """MariaDB's log_bin_compress=ON: capture refuses the server with one line naming the setting;
    compressed events left in the log after it is turned off fail the pass with one line instead
    of being skipped."""
    s = binlog_settings
    _run(s, build=False)
    (min_len,) = _sql(s, "SELECT @@global.log_bin_compress_min_len")[0]
    try:
        _sql(s, "SET GLOBAL log_bin_compress_min_len = 10")
        _sql(s, "SET GLOBAL log_bin_compress = ON")
        _sql(s, "UPDATE orders SET order_approved_at = '2001-01-01' ORDER BY order_id LIMIT 1")
        with pytest.raises(Exception, match=r"needs the source server's log_bin_compress=OFF \(it is ON\)"):
            pipeline.extract(s, quiet(), "auto", ["orders"])
        _sql(s, "SET GLOBAL log_bin_compress = OFF")
        with pytest.raises(RunFailed) as failed:
            pipeline.extract(s, quiet(), "auto", ["orders"])
        message = str(failed.value.failures[0].error)
        assert "a compressed event" in message and "log_bin_compress=OFF" in message and "\n" not in message
    finally:
        _sql(s, "SET GLOBAL log_bin_compress = OFF")
        _sql(s, f"SET GLOBAL log_bin_compress_min_len = {int(min_len)}")


def test_purged_position_falls_back_to_a_historical_extract(binlog_settings, binlog_server):
    s = binlog_settings
    _run(s, build=False)
    _sql(s, "DELETE FROM order_items ORDER BY order_id LIMIT 3")
    _sql(s, "UPDATE orders SET order_approved_at = '2003-03-03' ORDER BY order_id LIMIT 2")
    binlog_server.execute("FLUSH BINARY LOGS")
    newest = binlog_server.execute("SHOW MASTER STATUS")[0][0]
    for _ in range(100):  # InnoDB releases the older log at its next checkpoint, a moment later
        binlog_server.execute(f"PURGE BINARY LOGS TO '{newest}'")
        if [r[0] for r in binlog_server.execute("SHOW BINARY LOGS")] == [newest]:
            break
        time.sleep(0.1)
    assert [r[0] for r in binlog_server.execute("SHOW BINARY LOGS")] == [newest]
    lines: list[str] = []
    rep = quiet()
    rep.echo = lines.append
    reports = pipeline.extract(s, rep, "auto", TABLES)
    lost = [line for line in lines if "gone from the server" in line]
    assert len(lost) == len(TABLES) and all("taking a historical extract" in line for line in lost)
    assert {r.mode for r in reports} == {"historical"}
    pipeline.load(s, quiet(), TABLES)
    _build(s)
    _assert_staging_equals_source(s)
    assert warehouse_rows(s, "SELECT count(*) FROM staging.stg_olist__orders WHERE approved_at = '2003-03-03'") == [
        (2,)
    ]
    # and capture goes on from the new snapshot's position
    _sql(s, "UPDATE orders SET order_approved_at = '2004-04-04' ORDER BY order_id DESC LIMIT 1")
    _run(s)
    _assert_staging_equals_source(s)
    assert warehouse_rows(s, "SELECT count(*) FROM staging.stg_olist__orders WHERE approved_at = '2004-04-04'") == [
        (1,)
    ]


def test_binlog_capture_refuses_a_source_without_a_binary_log(settings, mysql_url):
    s = settings.with_(source_url=mysql_url, capture="binlog")
    with pytest.raises(Exception, match="DWH_CAPTURE=binlog needs the source server's log_bin=ON"):
        pipeline.extract(s, quiet(), "auto", ["sellers"])


def test_position_lost_error_names_the_table(binlog_settings):
    s = binlog_settings
    table = declared_tables(s.project_dir)["orders"]
    from loaders.extract.binlog import check_position

    with open_source(s.source_url) as db, pytest.raises(PositionLostError, match="table 'orders'.*binlog.999999"):
        check_position(db, table, Position("binlog.999999", 4))


@pytest.mark.parametrize(
    ("query", "schema", "stops"),
    [
        ("ALTER TABLE orders ADD COLUMN x INT", "shop", True),
        ("alter table `orders` drop column order_status", "shop", True),
        ("/* app */ ALTER ONLINE TABLE shop.orders ADD INDEX (x)", "other", True),
        ("ALTER TABLE `shop`.`orders` RENAME COLUMN a TO b", "", True),
        ("TRUNCATE TABLE orders", "shop", True),
        ("DROP TABLE IF EXISTS `orders` /* generated by server */", "shop", True),
        ("RENAME TABLE orders TO orders_old", "shop", True),
        ("ALTER TABLE orders_archive ADD COLUMN x INT", "shop", False),
        ("ALTER TABLE orders ADD COLUMN x INT", "other", False),
        ("CREATE TABLE audit (orders INT)", "shop", False),
        ("BEGIN", "shop", False),
        ("INSERT INTO orders VALUES (1)", "shop", False),
    ],
)
def test_schema_statements_of_a_captured_table_are_recognised(query, schema, stops):
    from loaders.extract.binlog import _schema_change

    table = declared_tables(PROJECT_DIR)["orders"]
    assert _schema_change(query, "shop", schema, table) is stops


def test_capture_setting_is_checked():
    from loaders.config import ConfigError, Settings

    assert Settings.from_env({"DWH_CAPTURE": "binlog"}).capture == "binlog"
    with pytest.raises(ConfigError, match="DWH_CAPTURE='wal': use cursor or binlog"):
        Settings.from_env({"DWH_CAPTURE": "wal"})


def test_positions_order_by_file_number_then_offset():
    assert Position("binlog.000010", 4).key > Position("binlog.000009", 999_999).key
    assert Position.from_json(Position("binlog.000001", 42, "0-1-7").to_json()) == Position(
        "binlog.000001", 42, "0-1-7"
    )


def test_reverted_content_and_reinserted_rows_win_in_commit_order(binlog_settings):
    """A table without a cursor column: a value changed and changed back, and a row deleted and
    inserted again with the same content, each in its own run. Every change is a new version
    (a binlog batch is exactly-once by its log range, so its rows are not deduplicated against
    older versions with the same content), and staging shows the source."""
    s = binlog_settings
    _run(s, ["sellers"])
    seller, city = _sql(s, "SELECT seller_id, seller_city FROM sellers ORDER BY seller_id LIMIT 1")[0]
    _sql(s, "UPDATE sellers SET seller_city = 'elsewhere' WHERE seller_id = %s", (seller,))
    _run(s, ["sellers"])
    _assert_staging_equals_source(s, ["sellers"])
    _sql(s, "UPDATE sellers SET seller_city = %s WHERE seller_id = %s", (city, seller))
    _run(s, ["sellers"])
    _assert_staging_equals_source(s, ["sellers"])
    row = _sql(s, "SELECT * FROM sellers WHERE seller_id = %s", (seller,))[0]
    _sql(s, "DELETE FROM sellers WHERE seller_id = %s", (seller,))
    _run(s, ["sellers"])
    assert warehouse_rows(s, f"SELECT count(*) FROM staging.stg_olist__sellers WHERE seller_id = '{seller}'") == [(0,)]
    _sql(s, "INSERT INTO sellers VALUES (%s, %s, %s, %s)", tuple(row))
    _run(s, ["sellers"])
    _assert_staging_equals_source(s, ["sellers"])
    ops = [
        r[0] for r in warehouse_rows(s, f"SELECT _op FROM raw.sellers WHERE seller_id = '{seller}' ORDER BY _batch_id")
    ]
    assert ops == ["r", "u", "u", "d", "c"]


@pytest.mark.parametrize(
    "patch",
    [
        "import loaders.extract.capture as c; c._with_ops = die",  # mid-batch, parts being written
        "import loaders.extract.capture as c; c.write_watermark = die",  # manifest written, position not
    ],
    ids=["mid_batch", "before_position"],
)
def test_sigkill_of_a_binlog_extract_then_rerun(binlog_settings, patch):
    """A `dwh extract` process SIGKILLed inside a binlog run, then a normal run: staging equals
    the source and no change is in raw twice."""
    s = binlog_settings
    _run(s, build=False)
    shop = Shop(s, seed=5)
    for _ in range(20):
        shop.step()
    before = _raw_change_count(s)
    code = textwrap.dedent(f"""
        import os, signal
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        {patch}
        from loaders.cli import main
        main({["--data-dir", str(s.data_dir), "extract", *sum((["--table", t] for t in TABLES), [])]!r})
    """)
    env = {**os.environ, "DWH_SOURCE_URL": s.source_url, "DWH_CAPTURE": "binlog"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == -9, result.stderr[-2000:]
    _run(s)
    _assert_staging_equals_source(s)
    assert _raw_change_count(s) - before == _published_binlog_rows(s)


# -- the fast row decoder (loaders/extract/binlog_rows.py) ---------------------------------------

TYPES_TABLE = """CREATE TABLE types (
    id INT NOT NULL PRIMARY KEY,
    big BIGINT NULL,
    small_int SMALLINT NULL,
    money DECIMAL(10,2) NULL,
    wide DECIMAL(30,12) NULL,
    whole DECIMAL(12,0) NULL,
    name VARCHAR(40) NULL,
    long_name VARCHAR(300) NULL,
    code CHAR(4) NULL,
    note TEXT NULL,
    ratio DOUBLE NULL,
    at DATETIME NULL,
    at_ms DATETIME(3) NULL,
    at_us DATETIME(6) NULL,
    at_odd DATETIME(5) NULL,
    stamp TIMESTAMP(6) NULL,
    day DATE NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""

TYPE_ROWS = [
    (
        1,
        9_007_199_254_740_993,
        -32768,
        "12345678.90",
        "-123456789012345678.123456789012",
        "-999999999999",
        "naïve café",
        "x" * 299 + "é",
        "ABCD",
        "a long note " * 40,
        -1.5e-300,
        "2018-09-01 10:00:00",
        "2018-09-01 10:00:00.123",
        "1999-12-31 23:59:59.999999",
        "2020-02-29 00:00:00.00001",
        "2021-06-01 12:00:00.5",
        "2018-09-01",
    ),
    (
        2,
        -9_223_372_036_854_775_808,
        32767,
        "-0.01",
        "0.000000000001",
        "0",
        "日本語 😀 emoji",
        "",
        "é",
        "",
        0.0,
        "1000-01-01 00:00:00",
        "9999-12-31 23:59:59.999",
        "2018-09-01 10:00:00.000001",
        "2018-09-01 10:00:00.99999",
        "1970-01-01 00:00:01",
        "9999-12-31",
    ),
    (-3, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None),
    (
        4,
        0,
        -1,
        "-99999999.99",
        "999999999999999999.999999999999",
        "123456789012",
        "   padded  ",
        "ü" * 300,
        "  ",
        "😀" * 1000,
        3.141592653589793,
        "2018-01-01 00:00:00",
        "2018-01-01 00:00:00.000",
        "2018-01-01 00:00:00.000000",
        "2018-01-01 00:00:00.10000",
        "2038-01-19 03:14:07.999999",
        "1000-01-01",
    ),
]


def _images_and_library(server, database: str, start, end) -> list[tuple[str, list | None, list]]:
    """Every row event of `database` between two positions, decoded both ways: (event type,
    our decoding of every column of every image, the library's)."""
    from pymysqlreplication import BinLogStreamReader  # type: ignore[import-untyped]  # no py.typed
    from pymysqlreplication.row_event import (  # type: ignore[import-untyped]  # no py.typed
        DeleteRowsEvent,
        UpdateRowsEvent,
        WriteRowsEvent,
    )

    from loaders.extract.binlog_rows import RowImages

    stream = BinLogStreamReader(
        connection_settings={"host": "127.0.0.1", "port": server.port, "user": "root", "password": ""},
        server_id=0x40000000 + secrets.randbelow(0x3FFFFFFF),
        log_file=start[0],
        log_pos=start[1],
        resume_stream=True,
        blocking=False,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
        only_schemas=[database],
        freeze_schema=True,
    )
    out = []
    try:
        for event in stream:
            if (stream.log_file, event.packet.log_pos) > end:
                break
            images = RowImages.for_columns(event.columns, [c.name for c in event.columns], frozenset())
            assert images is not None, f"{event.table}: the fast decoder refused {[c.type for c in event.columns]}"
            ours = images.rows(event, "all")
            library = []
            for row in event.rows:  # the library reads the same bytes after ours
                if "before_values" in row:
                    library += [list(row["before_values"].values()), list(row["after_values"].values())]
                else:
                    library.append(list(row["values"].values()))
            out.append((type(event).__name__, ours, library))
    finally:
        stream.close()
    return out


def test_fast_row_decoder_gives_the_library_values(binlog_server, binlog_url):
    """Inserts, updates (before and after images), deletes and a partial (MINIMAL) image of every
    column type the declarations use, with NULLs, negatives, multibyte UTF-8 and every fraction
    width, read from the real binary log: our decoder and mysql-replication's give the same values,
    of the same types, with the same text (a DECIMAL keeps its scale)."""
    database = binlog_url.rsplit("/", 1)[1]
    conn = binlog_server.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(TYPES_TABLE)
            cur.execute("SHOW MASTER STATUS")
            start = tuple(cur.fetchall()[0][:2])
            marks = ", ".join(["%s"] * len(TYPE_ROWS[0]))
            cur.executemany(f"INSERT INTO types VALUES ({marks})", TYPE_ROWS)
            cur.execute("UPDATE types SET money = -money, name = CONCAT(name, ' ✓'), at_us = NULL WHERE id <> 4")
            cur.execute("UPDATE types SET note = NULL, big = big - 1 WHERE id = 4")
            cur.execute("SET SESSION binlog_row_image = 'MINIMAL'")
            cur.execute("UPDATE types SET code = 'MIN' WHERE id = 1")
            cur.execute("SET SESSION binlog_row_image = 'FULL'")
            cur.execute("DELETE FROM types WHERE id IN (2, -3)")
            cur.execute("SHOW MASTER STATUS")
            end = tuple(cur.fetchall()[0][:2])
    finally:
        conn.close()
    decoded = _images_and_library(binlog_server, database, start, end)
    assert {kind for kind, _, _ in decoded} == {"WriteRowsEvent", "UpdateRowsEvent", "DeleteRowsEvent"}
    images = 0
    for kind, ours, library in decoded:
        assert ours is not None, f"{kind}: the fast decoder gave up"
        assert len(ours) == len(library)
        for mine, theirs in zip(ours, library, strict=True):
            assert mine == theirs, kind
            assert [type(v) for v in mine] == [type(v) for v in theirs], kind
            assert [str(v) for v in mine] == [str(v) for v in theirs], kind
            images += 1
    # 4 inserts; updates as before + after: 2 rows (the all-NULL row does not change), 1 row, the
    # MINIMAL one; 2 deletes
    assert images == 4 + 2 * 2 + 2 * 1 + 2 * 1 + 2
    # the MINIMAL update's images hold only some columns: the others are None in both decodings
    # (MINIMAL: the key in the before image, the changed column in the after image)
    minimal = [ours for kind, ours, _ in decoded if kind == "UpdateRowsEvent" and ours and ours[1][8] == "MIN"]
    assert len(minimal) == 1
    (before, after) = minimal[0]
    assert before[0] == 1 and before[1] is None and after[0] is None and after[1] is None


def test_fast_row_decoder_leaves_unknown_types_to_the_library():
    """A table map with a type the fast decoder does not read (here TIME2 and JSON) gets no fast
    decoder: the library decodes that table."""
    from types import SimpleNamespace

    from loaders.extract.binlog_rows import RowImages

    known = SimpleNamespace(type=3, name="id", unsigned=False)
    for unknown in (SimpleNamespace(type=19, name="t", fsp=0), SimpleNamespace(type=245, name="j", length_size=4)):
        assert RowImages.for_columns([known, unknown], ["id"], frozenset({"id"})) is None
    assert RowImages.for_columns([known], ["id"], frozenset({"id"})) is not None


def test_log_pass_frames_the_log_like_the_library(binlog_server, binlog_url):
    """Our framing (LogPass) over a range holding a declared table of every fast-decoded type
    (`types`), a declared table with a TIME column only the library decodes (`spans`), and an
    undeclared table's changes in between, in chunks of about 3 rows: each declared table's changes
    are, change for change, what mysql-replication's own event reading gives (an insert's image,
    an update's after image, a delete's key and cursor)."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import (
        DeleteRowsEvent,
        UpdateRowsEvent,
        WriteRowsEvent,
    )

    from loaders.declarations.olist import Column, Table
    from loaders.declarations.types import LogicalType
    from loaders.extract.binlog import LogPass

    database = binlog_url.rsplit("/", 1)[1]
    text = LogicalType.parse("text")
    types_names = [line.split()[0] for line in TYPES_TABLE.splitlines()[1:-1]]
    declared = {
        "types": Table("types", "", tuple(Column(n, text) for n in types_names), ("id",), "at_us", "id"),
        "spans": Table("spans", "", (Column("id", text), Column("label", text)), ("id",), "label", "id"),
    }
    conn = binlog_server.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(TYPES_TABLE)
            cur.execute("CREATE TABLE spans (id INT PRIMARY KEY, span TIME(3) NULL, label VARCHAR(10) NULL)")
            cur.execute("CREATE TABLE other (id INT PRIMARY KEY, v INT)")
            cur.execute("SHOW MASTER STATUS")
            start = Position(*cur.fetchall()[0][:2])
            marks = ", ".join(["%s"] * len(TYPE_ROWS[0]))
            cur.executemany(f"INSERT INTO types VALUES ({marks})", TYPE_ROWS)
            cur.execute("INSERT INTO other VALUES (1, 1), (2, 2)")
            cur.executemany("INSERT INTO spans VALUES (%s, %s, %s)", [(i, f"{i}:30:00.125", f"s{i}") for i in range(5)])
            cur.execute("UPDATE types SET money = -money, name = CONCAT(name, ' ✓') WHERE id <> 4")
            cur.execute("UPDATE other SET v = v + 1")
            cur.execute("UPDATE spans SET label = 'changed' WHERE id < 3")
            cur.execute("DELETE FROM types WHERE id IN (2, -3)")
            cur.execute("DELETE FROM spans WHERE id = 4")
            cur.execute("SHOW MASTER STATUS")
            end = Position(*cur.fetchall()[0][:2])
    finally:
        conn.close()
    with open_source(binlog_url) as engine:
        chunks = list(LogPass(engine, {n: (t, start) for n, t in declared.items()}, end, 3))
    ours: dict[str, list] = {"types": [], "spans": []}
    for chunk in chunks:
        assert chunk.stopped is None
        ours[chunk.table] += list(zip(chunk.ops, chunk.rows, strict=True))
    theirs: dict[str, list] = {"types": [], "spans": []}
    stream = BinLogStreamReader(
        connection_settings={"host": "127.0.0.1", "port": binlog_server.port, "user": "root", "password": ""},
        server_id=0x40000000 + secrets.randbelow(0x3FFFFFFF),
        log_file=start.file,
        log_pos=start.pos,
        resume_stream=True,
        blocking=False,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
        only_schemas=[database],
    )
    try:
        for event in stream:
            if (stream.log_file, event.packet.log_pos) > (end.file, end.pos):
                break
            table = declared.get(event.table)
            if table is None:
                continue
            names, keep = table.column_names, {*table.primary_key, table.cursor}
            for row in event.rows:
                if isinstance(event, UpdateRowsEvent):
                    theirs[event.table].append(("u", [row["after_values"][n] for n in names]))
                elif isinstance(event, WriteRowsEvent):
                    theirs[event.table].append(("c", [row["values"][n] for n in names]))
                else:
                    theirs[event.table].append(("d", [row["values"][n] if n in keep else None for n in names]))
    finally:
        stream.close()
    assert [op for op, _ in ours["types"]] == ["c"] * 4 + ["u"] * 2 + ["d"] * 2
    assert [op for op, _ in ours["spans"]] == ["c"] * 5 + ["u"] * 3 + ["d"]
    assert ours == theirs
    assert len(chunks) >= 4  # handed out batch_rows at a time (after the event that reaches it)
