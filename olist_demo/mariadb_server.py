"""A private MariaDB server with a row-based binary log, for the binlog capture tests and bench/cdc.py.

The machine's MariaDB (127.0.0.1:3306) runs without a binary log. `BinlogServer` makes its own
data folder with `mariadb-install-db`, then runs `mariadbd` in the background on a free loopback
port with `log_bin`, `binlog_format=ROW`, `binlog_row_image=FULL` and `binlog_row_metadata=FULL`
(without row metadata the row events carry no column names), and stops it when done. It uses
the Debian packages' binaries (`mariadb-server`); as root it passes `--user=root`.

    with BinlogServer(folder) as server:
        url = server.create_database("shop")      # mysql://root@127.0.0.1:<port>/shop
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

BINARIES = ("mariadb-install-db", "mariadbd")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/usr/local/sbin"])


class ServerError(RuntimeError):
    """The binlog server could not be set up or started; the message says why (and where its log is)."""


def _binary(name: str) -> str:
    path = shutil.which(name, path=SEARCH_PATH)
    if path is None:
        raise ServerError(f"{name} not found: install Debian's mariadb-server (apt-get install mariadb-server)")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BinlogServer:
    """A MariaDB server with a row-based binary log in `folder` (data, socket, logs), on a free
    loopback port. `start()` waits until it accepts connections (up to `timeout` seconds);
    `stop()` shuts it down and waits for the process. Raises ServerError when it cannot start."""

    def __init__(self, folder: Path, timeout: float = 60.0):
        self.folder = Path(folder)
        self.timeout = timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.folder / "data"

    @property
    def error_log(self) -> Path:
        return self.folder / "mariadbd.err"

    def url(self, database: str = "") -> str:
        """A source URL for `database` on this server (user root, no password)."""
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def start(self) -> BinlogServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        if not (self.datadir / "mysql").is_dir():
            install = subprocess.run(
                [
                    _binary("mariadb-install-db"),
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    *as_root,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if install.returncode:
                tail = (install.stderr or install.stdout).strip().splitlines()[-3:]
                raise ServerError(f"mariadb-install-db --datadir={self.datadir} failed: {' | '.join(tail)}")
        self.port = _free_port()
        args = [
            _binary("mariadbd"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.folder / 'mariadbd.sock'}",
            f"--pid-file={self.folder / 'mariadbd.pid'}",
            f"--log-error={self.error_log}",
            "--log-bin=binlog",
            "--binlog-format=ROW",
            "--binlog-row-image=FULL",
            "--binlog-row-metadata=FULL",
            "--server-id=1",
            "--skip-name-resolve",
            "--local-infile=1",
            "--innodb-buffer-pool-size=128M",
            "--max-connections=200",
            *as_root,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"mariadbd exited with status {self.process.returncode}; see {self.error_log}")
            try:
                self.connect().close()
                return self
            except Exception:
                time.sleep(0.2)
        self.stop()
        raise ServerError(f"mariadbd did not accept connections on port {self.port} in {self.timeout:.0f}s")

    def connect(self, database: str | None = None):  # -> pymysql.Connection
        """A new autocommit connection as root."""
        import pymysql

        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", password="", database=database, autocommit=True
        )

    def execute(self, sql: str, database: str | None = None) -> list[tuple]:
        """Run one statement on a new connection and return its rows."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()

    def create_database(self, name: str) -> str:
        """Create database `name` (dropping an older one) and return its source URL."""
        self.execute(f"DROP DATABASE IF EXISTS `{name}`")
        self.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        return self.url(name)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: mariadbd shuts down cleanly
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> BinlogServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
