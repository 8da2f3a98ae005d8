"""PostgreSQL as the warehouse: the same load flow, parts streamed through COPY FROM STDIN."""

from __future__ import annotations

import psycopg2
import pytest

from loaders import pipeline

from .helpers import extract_and_load, fill_source, quiet


def test_load_into_postgres_keeps_values_exactly(pg_settings, olist_csv):
    s = pg_settings.with_(batch_rows=500)
    tables = ["order_reviews", "order_items"]
    fill_source(s, olist_csv, tables)
    batches, loads = extract_and_load(s, "auto", tables)
    with psycopg2.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, dbname=s.pg_database) as conn:
        cur = conn.cursor()
        for b in batches:
            cur.execute(f'SELECT count(*) FROM raw."{b.table}"')
            assert cur.fetchone()[0] == b.rows
        cur.execute("SELECT count(*) FROM raw.order_reviews WHERE review_comment_title IS NULL")
        nulls = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM raw.order_reviews WHERE review_comment_title = ''")
        assert nulls > 0 and cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM raw.order_reviews WHERE review_comment_message LIKE '%\n%'")
        assert cur.fetchone()[0] > 0
        cur.execute("SELECT pg_typeof(price)::text FROM raw.order_items LIMIT 1")
        assert cur.fetchone()[0] == "numeric"
    _, again = extract_and_load(s, "auto", tables)
    assert all(r.rows_inserted == 0 for r in again if r.status == "loaded")


def test_unreachable_postgres_is_named(settings):
    from loaders.warehouses import WarehouseError

    s = settings.with_(warehouse="postgres", pg_port=1)
    with pytest.raises(WarehouseError, match="cannot connect to PostgreSQL at 127.0.0.1:1"):
        pipeline.load(s, quiet(), ["orders"])
