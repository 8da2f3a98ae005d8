"""Shared fixtures: real engines only.

SQLite and DuckDB run in-process in a temporary folder per test. MariaDB is the server on
127.0.0.1:3306 and PostgreSQL the one on 127.0.0.1:5432: each test gets its own database,
dropped afterwards. S3 is moto's server on a
loopback port, reached with real boto3/s3fs clients; each test gets its own bucket.
Outside CI a missing MariaDB skips its tests; in CI (CI=true) it fails them, because a skip
there would hide a missing install step.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from loaders.config import PROJECT_DIR, Settings
from olist_demo.olist_generator import generate_olist

IN_CI = os.environ.get("CI", "").lower() == "true"
MYSQL_HOST = os.environ.get("DWH_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("DWH_TEST_MYSQL_PORT", "3306"))
PG_HOST, PG_PORT = "127.0.0.1", 5432
TEST_SCALE = 0.01


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must not be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def olist_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The nine Olist CSVs at a small scale, generated once per session. Treat as read-only."""
    out = tmp_path_factory.mktemp("olist_csv")
    generate_olist(out, scale=TEST_SCALE, seed=7)
    return out


@pytest.fixture
def csv_copy(olist_csv: Path, tmp_path: Path) -> Path:
    """A private copy of the CSVs that a test may edit."""
    out = tmp_path / "csv"
    shutil.copytree(olist_csv, out)
    return out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults inside the test's own folder."""
    return Settings(data_dir=tmp_path / "data", lookback_seconds=900)


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB database for this test, as a source URL; dropped afterwards."""
    import pymysql

    name = f"dwh_test_{secrets.token_hex(4)}"
    try:
        admin = pymysql.connect(
            host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", autocommit=True, connect_timeout=5
        )
    except pymysql.MySQLError as exc:
        _unavailable(f"MariaDB not reachable at {MYSQL_HOST}:{MYSQL_PORT}: {exc}")
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database, by name; dropped afterwards (even when a connection is
    still open). Unreachable PostgreSQL fails the test (tests/conftest.py `_unavailable`)."""
    import psycopg2

    try:
        admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        _unavailable(f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT}: {exc}")
    admin.autocommit = True
    name = f"dwh_test_{secrets.token_hex(4)}"
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, by name; dropped afterwards."""
    with fresh_pg_database() as name:
        yield name


@pytest.fixture
def pg_settings(settings: Settings, pg_database: str) -> Settings:
    """The test's settings with PostgreSQL (its own database) as the warehouse."""
    return settings.with_(warehouse="postgres", pg_host=PG_HOST, pg_port=PG_PORT, pg_database=pg_database)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a loopback port, for the whole session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - only without the dev dependencies
        _unavailable(f"moto[server] is not installed: {exc}")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the moto server."""
    import boto3

    name = f"dwh-test-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def project_dir() -> Path:
    return PROJECT_DIR


@pytest.fixture(scope="session")
def binlog_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A second MariaDB with a row-based binary log (olist_demo/mariadb_server.py), started for
    the session on a free loopback port and stopped at its end. Missing binaries or a failed
    start skip its tests outside CI and fail them in CI."""
    from olist_demo.mariadb_server import BinlogServer, ServerError

    server = BinlogServer(tmp_path_factory.mktemp("binlog_server"))
    try:
        server.start()
    except ServerError as exc:
        _unavailable(f"cannot start the binlog MariaDB: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def binlog_url(binlog_server) -> Iterator[str]:
    """A fresh database on the binlog server for this test, as a source URL; dropped afterwards."""
    name = f"dwh_binlog_{secrets.token_hex(4)}"
    url = binlog_server.create_database(name)
    try:
        yield url
    finally:
        binlog_server.execute(f"DROP DATABASE IF EXISTS `{name}`")
