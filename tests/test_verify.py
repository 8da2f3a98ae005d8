"""`dwh verify` (issue 12): equal tables are equal; each kind of difference is found and named;
--repair converges (late commit, unbumped cursor, deletes)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from loaders import pipeline
from loaders.cli import main
from loaders.sources import open_source

from .helpers import extract_and_load, fill_source, quiet, warehouse_rows

TABLES = ["orders", "order_items", "order_reviews"]


def _diffs(settings) -> dict:
    return {d.table: d for d in pipeline.verify(settings, quiet(), TABLES)}


def _one(db, sql: str, params: tuple = ()) -> tuple:
    return db.execute(sql, params)[0]


def test_verify_finds_and_names_each_kind_of_difference(settings, olist_csv):
    s = settings
    fill_source(s, olist_csv, TABLES)
    extract_and_load(s, tables=TABLES)
    diffs = _diffs(s)
    assert all(d.equal for d in diffs.values()), [d.summary() for d in diffs.values()]
    assert diffs["orders"].source_rows == diffs["orders"].warehouse_rows > 0
    with open_source(s.source_url) as db:
        for t in TABLES:  # changes that leave the cursor alone, as a late or unbumped writer would
            db.execute(f'DROP TRIGGER IF EXISTS "{t}__touch"')
        (gone,) = _one(db, "SELECT order_id FROM orders ORDER BY order_id LIMIT 1")
        db.execute("DELETE FROM orders WHERE order_id = ?", (gone,))
        (late,) = _one(db, "SELECT order_id FROM orders ORDER BY order_id LIMIT 1 OFFSET 5")
        db.execute(
            "INSERT INTO orders SELECT 'ffffffffffffffffffffffffffffff01', customer_id, order_status, "
            "order_purchase_timestamp, order_approved_at, order_delivered_carrier_date, "
            "order_delivered_customer_date, order_estimated_delivery_date, updated_at FROM orders WHERE order_id = ?",
            (late,),
        )
        item, seq = _one(db, "SELECT order_id, order_item_id FROM order_items ORDER BY order_id LIMIT 1 OFFSET 3")
        db.execute(  # a cent
            "UPDATE order_items SET price = printf('%.2f', CAST(price AS REAL) + 0.01) "
            "WHERE order_id = ? AND order_item_id = ?",
            (item, seq),
        )
        item2, seq2 = _one(db, "SELECT order_id, order_item_id FROM order_items ORDER BY order_id LIMIT 1 OFFSET 7")
        db.execute(  # a microsecond
            "UPDATE order_items SET shipping_limit_date = strftime('%Y-%m-%d %H:%M:%S', shipping_limit_date) "
            "|| '.000001' WHERE order_id = ? AND order_item_id = ?",
            (item2, seq2),
        )
        review, rorder = _one(
            db, "SELECT review_id, order_id FROM order_reviews WHERE review_comment_title IS NULL LIMIT 1"
        )
        db.execute(  # NULL -> ''
            "UPDATE order_reviews SET review_comment_title = '' WHERE review_id = ? AND order_id = ?",
            (review, rorder),
        )
    diffs = _diffs(s)
    assert diffs["orders"].extra == [(gone,)]
    assert diffs["orders"].missing == [("ffffffffffffffffffffffffffffff01",)]
    assert diffs["orders"].changed == []
    assert sorted(diffs["order_items"].changed) == sorted([(item, seq), (item2, seq2)])
    assert diffs["order_reviews"].changed == [(review, rorder)]
    assert not any(d.equal for d in diffs.values())
    assert "missing 1 (ffffffffffffffffffffffffffffff01)" in diffs["orders"].summary()
    # the CLI exits 1 and names them; the log keeps the result for dwh status
    env = {"DWH_DATA_DIR": str(s.data_dir)}
    result = CliRunner().invoke(main, ["verify", "--table", "orders"], env=env)
    assert result.exit_code == 1, result.output
    assert f"extra 1 ({gone})" in result.output
    assert warehouse_rows(s, "SELECT status FROM raw._verify_log WHERE table_name = 'orders' ORDER BY verified_at") == [
        ("equal",),
        ("different",),
        ("different",),
    ]
    status = CliRunner().invoke(main, ["status"], env=env)
    assert "different" in status.output, status.output


@pytest.mark.slow
def test_repair_converges_and_the_second_verify_is_equal(settings, olist_csv):
    s = settings
    fill_source(s, olist_csv)
    extract_and_load(s)
    pipeline.build(s, quiet(), [], check_freshness=False)
    with open_source(s.source_url) as db:
        db.execute('DROP TRIGGER IF EXISTS "orders__touch"')
        (oid,) = _one(db, "SELECT order_id FROM orders WHERE order_status = 'delivered' ORDER BY order_id LIMIT 1")
        db.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = ?", (oid,))  # cursor not bumped
        (gone,) = _one(db, "SELECT order_id FROM order_items ORDER BY order_id DESC LIMIT 1")
        for t in ("order_items", "order_payments", "order_reviews", "orders"):
            db.execute(f"DELETE FROM {t} WHERE order_id = ?", (gone,))
    diffs = {d.table: d for d in pipeline.verify(s, quiet(), None, repair=True)}
    assert all(d.equal for d in diffs.values()), [d.summary() for d in diffs.values()]
    assert warehouse_rows(s, f"SELECT order_status FROM marts.fact_orders WHERE order_id = '{oid}'") == [("canceled",)]
    assert warehouse_rows(s, f"SELECT count(*) FROM marts.fact_orders WHERE order_id = '{gone}'") == [(0,)]
    assert warehouse_rows(s, f"SELECT count(*) FROM marts.fact_order_items WHERE order_id = '{gone}'") == [(0,)]
    env = {"DWH_DATA_DIR": str(s.data_dir)}
    assert CliRunner().invoke(main, ["verify"], env=env).exit_code == 0
