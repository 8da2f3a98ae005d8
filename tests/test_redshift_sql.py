"""Redshift cannot run here: the statements the loader would send are rendered and parsed with
SQLFluff's redshift dialect, and the load flow is driven through a recording connection."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlfluff

from loaders import pipeline
from loaders.declarations import declared_tables
from loaders.load import LoadError, batch_statements, list_batches, load_batch
from loaders.manifest import read_manifest
from loaders.store import ObjectStore
from loaders.warehouses import RedshiftWarehouse

from .helpers import fill_source, quiet

ROLE = "arn:aws:iam::123456789012:role/redshift-copy"


@pytest.fixture
def extracted(settings, olist_csv):
    s = settings.with_(warehouse="redshift", redshift_iam_role=ROLE, part_rows=400)
    fill_source(s, olist_csv, ["orders", "order_items"])
    pipeline.extract(s, quiet(), "historical", ["orders", "order_items"])
    return s


def _statements(s, table_name):
    store = ObjectStore(s.store_url, s)
    wh = RedshiftWarehouse(s, store)
    table = declared_tables(s.project_dir)[table_name]
    ((_, folder),) = list_batches(store, table)
    manifest = read_manifest(store, table, folder)
    steps = batch_statements(wh, table, manifest, folder, datetime(2026, 11, 22, 3, 0, 0))
    return wh, table, list(wh.create_statements(table)) + [sql for step in steps.values() for sql in step]


def _parse_redshift(sql: str) -> None:
    sqlfluff.parse(sql, dialect="redshift")  # raises APIParsingError on anything unparsable


def test_the_parser_check_can_fail():
    with pytest.raises(sqlfluff.api.APIParsingError):
        _parse_redshift("COPY stage FROM MANIFEST FORMAT AS")


@pytest.mark.parametrize("table_name", ["orders", "order_items"])
def test_every_statement_parses_as_redshift(extracted, table_name):
    wh, table, statements = _statements(extracted, table_name)
    for sql in statements:
        _parse_redshift(sql)  # raises APIParsingError on anything the dialect rejects


def test_copy_uses_the_manifest_role_and_parquet(extracted):
    wh, table, statements = _statements(extracted, "order_items")
    (copy,) = [s for s in statements if s.startswith("COPY")]
    assert '"stage__order_items"' in copy
    assert "/_copy.manifest'" in copy and "MANIFEST" in copy
    assert f"IAM_ROLE '{ROLE}'" in copy and "FORMAT AS PARQUET" in copy
    ddl = statements[1]
    assert 'DISTKEY ("order_id")' in ddl and 'SORTKEY ("updated_at")' in ddl
    assert '"price" DECIMAL(10,2)' in ddl and '"order_id" VARCHAR(128)' in ddl
    assert any(s.startswith('LOCK "raw"."_load_log"') for s in statements)


def test_missing_iam_role_is_a_setting_error(extracted):
    from loaders.config import ConfigError

    s = extracted.with_(redshift_iam_role="")
    with pytest.raises(ConfigError, match="DWH_REDSHIFT_IAM_ROLE"):
        _statements(s, "orders")


class RecordingConnection:
    """A DB-API connection that records statements; COPY can be made to fail like Redshift's."""

    def __init__(self, logged: bool = False, copy_fails: bool = False):
        self.sql: list[str] = []
        self.logged, self.copy_fails = logged, copy_fails

    def cursor(self):
        return _Cursor(self)

    def close(self):
        pass


class _Cursor:
    def __init__(self, conn):
        self.conn, self.description, self._rows = conn, None, []

    def execute(self, sql):
        self.conn.sql.append(sql)
        self.description, self._rows = None, []
        if sql.startswith("COPY") and self.conn.copy_fails:
            raise RuntimeError(
                "Load into table 'stage__orders' failed. Check 'stl_load_errors' system table for details."
            )
        if "FROM stl_load_errors" in sql or "FROM sys_load_error_detail" in sql:
            self.description, self._rows = (
                [("f",)],
                [("s3://b/orders/part-00000.parquet", 1, "order_status", "String length exceeds DDL length")],
            )
        elif sql.startswith('SELECT 1 FROM "raw"."_load_log"'):
            self.description, self._rows = [("x",)], [(1,)] if self.conn.logged else []
        elif sql.startswith("SELECT min("):  # the staged batch's bounds
            self.description = [("k",)] * 5
            self._rows = [("0" * 32, "f" * 32, datetime(2018, 1, 1, 10), datetime(2018, 1, 1, 11, 30, 0, 250), 0)]
        elif sql.startswith("SELECT rows_inserted"):
            self.description, self._rows = [("n",)], [(7,)]

    def fetchall(self):
        return self._rows

    def close(self):
        pass


def _wh(s, conn):
    store = ObjectStore(s.store_url, s)
    wh = RedshiftWarehouse(s, store)
    wh.conn = conn
    table = declared_tables(s.project_dir)["orders"]
    ((_, folder),) = list_batches(store, table)
    return wh, table, folder


def test_load_runs_copy_insert_and_log_in_one_transaction(extracted):
    conn = RecordingConnection()
    wh, table, folder = _wh(extracted, conn)
    report = load_batch(wh, table, folder)
    assert report.status == "loaded" and report.rows_inserted == 7
    sql = conn.sql
    begin, commit = sql.index("BEGIN"), sql.index("COMMIT")
    inside = sql[begin:commit]
    # the rows, the snapshot's tombstones (a historical batch), the load log
    assert [s.split()[0] for s in inside if s.split()[0] in ("LOCK", "COPY", "INSERT")] == [
        "LOCK",
        "COPY",
        "INSERT",
        "INSERT",
        "INSERT",
    ]
    assert "'d'" in [s for s in inside if s.startswith("INSERT")][1]
    assert any(s.startswith('DROP TABLE "stage__orders"') for s in inside)
    assert inside[-1].startswith("SELECT rows_inserted")  # read back before COMMIT
    # The existence check reads only the batch's range: the cursor is the sort key (zone maps).
    insert = [s for s in inside if s.startswith('INSERT INTO "raw"."orders"')][0]  # then the tombstones
    assert inside.index(insert) > inside.index(next(s for s in inside if s.startswith("SELECT min(")))
    assert (
        "r.\"order_id\" BETWEEN '00000000000000000000000000000000' AND 'ffffffffffffffffffffffffffffffff' AND "
        "r.\"updated_at\" BETWEEN CAST('2018-01-01 10:00:00.000000' AS TIMESTAMP) AND "
        "CAST('2018-01-01 11:30:00.000250' AS TIMESTAMP)"
    ) in insert
    # a later version of the key (the latest-version rule) is bounded by the key range only
    assert "n.\"order_id\" BETWEEN '00000000000000000000000000000000' AND 'ffffffffffffffffffffffffffffffff'" in insert
    assert 'n."updated_at" BETWEEN' not in insert
    _parse_redshift(insert)


def test_batch_in_the_log_is_skipped_without_copy(extracted):
    conn = RecordingConnection(logged=True)
    wh, table, folder = _wh(extracted, conn)
    assert load_batch(wh, table, folder).status == "skipped"
    assert not any(s.startswith("COPY") for s in conn.sql)


def test_copy_failure_reports_stl_load_errors_and_rolls_back(extracted):
    conn = RecordingConnection(copy_fails=True)
    wh, table, folder = _wh(extracted, conn)
    with pytest.raises(LoadError) as info:
        load_batch(wh, table, folder)
    message = str(info.value)
    assert "part-00000.parquet, line 1, column order_status: String length exceeds DDL length" in message
    assert "nothing was loaded" in message
    assert "ROLLBACK" in conn.sql and "COMMIT" not in conn.sql


SERVERLESS_HOST = "wg.123456789012.us-east-1.redshift-serverless.amazonaws.com"
PROVISIONED_HOST = "my-cluster.abc123.us-east-1.redshift.amazonaws.com"


@pytest.mark.parametrize(
    ("serverless", "host", "view"),
    [
        ("auto", SERVERLESS_HOST, "sys_load_error_detail"),
        ("auto", PROVISIONED_HOST, "stl_load_errors"),
        ("auto", "", "stl_load_errors"),
        ("true", PROVISIONED_HOST, "sys_load_error_detail"),
        ("false", SERVERLESS_HOST, "stl_load_errors"),
    ],
)
def test_copy_errors_come_from_the_view_the_target_has(extracted, serverless, host, view):
    s = extracted.with_(redshift_serverless=serverless, redshift_host=host)
    conn = RecordingConnection(copy_fails=True)
    wh, table, folder = _wh(s, conn)
    with pytest.raises(LoadError) as info:
        load_batch(wh, table, folder)
    (query,) = [q for q in conn.sql if "load_error" in q]
    assert f"FROM {view} " in query and query == wh.copy_error_query()
    other = {"sys_load_error_detail", "stl_load_errors"} - {view}
    assert other.pop() not in query
    _parse_redshift(query)
    assert "part-00000.parquet, line 1, column order_status: String length exceeds DDL length" in str(info.value)


def test_serverless_query_names_file_line_column_and_reason(extracted):
    wh, _, _ = _wh(extracted.with_(redshift_serverless="true"), RecordingConnection())
    query = wh.copy_error_query()
    assert "SELECT TRIM(file_name), line_number, TRIM(column_name), TRIM(error_message)" in query
    assert "session_id = pg_backend_pid()" in query


def test_unknown_serverless_setting_is_refused(extracted):
    from loaders.config import ConfigError

    with pytest.raises(ConfigError, match="DWH_REDSHIFT_SERVERLESS='maybe'"):
        extracted.with_(redshift_serverless="maybe")
