"""A real late commit on MariaDB (issue 12, `late-commit`): a transaction stamps its rows' cursor
when it updates them but commits after a run has read past that cursor; no cursor read sees it
again, a verify-and-repair brings it."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlsplit

import pymysql
import pytest

from loaders import pipeline
from loaders.declarations import declared_tables
from loaders.extract.watermark import read_watermark
from loaders.sources import open_source
from loaders.store import ObjectStore

from .helpers import fill_source, quiet, staging_differences, warehouse_rows

pytestmark = pytest.mark.slow
LOOKBACK = 1  # seconds: small, as an hourly schedule with a short safety margin would have


def _status(settings, order_id: str) -> list[tuple]:
    return warehouse_rows(
        settings,
        "SELECT s.order_status, f.order_status FROM staging.stg_olist__orders s "
        f"JOIN marts.fact_orders f USING (order_id) WHERE order_id = '{order_id}'",
    )


def test_a_late_commit_is_missed_by_the_next_runs_and_brought_by_verify_and_repair(settings, mysql_url, olist_csv):
    s = settings.with_(source_url=mysql_url, lookback_seconds=LOOKBACK, verify_every="0")
    orders = declared_tables(s.project_dir)["orders"]
    fill_source(s, olist_csv)
    pipeline.run(s, quiet())  # historical
    with open_source(s.source_url) as db:
        (order_id,) = db.execute("SELECT order_id FROM orders WHERE order_status = 'delivered' ORDER BY order_id")[0]
    assert _status(s, order_id) == [("delivered", "delivered")]

    # the application's transaction, on its own connection: the update stamps updated_at now
    url = urlsplit(mysql_url)
    app = pymysql.connect(
        host=url.hostname, port=url.port, user=url.username, password="", database=url.path[1:], autocommit=False
    )
    try:
        with app.cursor() as cur:
            cur.execute("START TRANSACTION")
            cur.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = %s", (order_id,))
            cur.execute("SELECT updated_at FROM orders WHERE order_id = %s", (order_id,))
            (stamped,) = cur.fetchone()
        with open_source(s.source_url) as db:  # until the source's clock is past the lookback window
            while db.now() - timedelta(seconds=LOOKBACK) <= stamped:
                time.sleep(0.05)
        pipeline.run(s, quiet())  # cannot see the uncommitted row; its watermark passes the cursor
        watermark = read_watermark(ObjectStore(s.store_url, s), orders)
        assert watermark is not None and watermark - timedelta(seconds=LOOKBACK) > stamped
        app.commit()
    finally:
        app.close()
    with open_source(s.source_url) as db:
        assert db.execute("SELECT order_status, updated_at FROM orders WHERE order_id = %s", (order_id,)) == [
            ("canceled", stamped)
        ]

    pipeline.run(s, quiet())  # a plain run reads from the watermark minus the lookback: misses it
    assert _status(s, order_id) == [("delivered", "delivered")]
    status, cursor = staging_differences(s, orders)
    assert status == f"orders ('{order_id}',): order_status is 'delivered' in staging, 'canceled' in the source"
    assert cursor.startswith(f"orders ('{order_id}',): source_updated_at is ") and cursor.endswith(
        f", {stamped!r} in the source"
    )

    pipeline.run(s.with_(verify_every="24h"), quiet())  # never verified: due now, and repairs
    assert _status(s, order_id) == [("canceled", "canceled")]
    assert staging_differences(s, orders) == []
