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


def _verify_direct(s, name: str, **kwargs):
    from loaders.declarations import declared_tables
    from loaders.extract import read_watermark
    from loaders.load.loader import ensure_raw_tables
    from loaders.store import ObjectStore
    from loaders.verify.diff import verify_table
    from loaders.warehouses import open_warehouse

    table = declared_tables(s.project_dir)[name]
    store = ObjectStore(s.store_url, s)
    with open_source(s.source_url) as db, open_warehouse(s, store) as wh:
        ensure_raw_tables(wh, [table])
        return verify_table(db, wh, table, read_watermark(store, table), **kwargs)


def test_verify_on_mariadb_case_insensitive_keys_composite_keys_recursion_and_empty_sides(
    settings, mysql_url, olist_csv
):
    """Buckets are hashes of the key's text: a case-insensitive, PAD SPACE collation on the
    source must not merge, split or reorder keys; a bucket of more than fetch_rows rows is
    split again and finds the same differences; a side with no rows is all missing or all extra."""
    s = settings.with_(source_url=mysql_url)
    tables = ["orders", "order_items"]
    fill_source(s, olist_csv, tables)
    with open_source(s.source_url) as db:
        for t in tables:
            db.execute(f"ALTER TABLE `{t}` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        (template,) = _one(db, "SELECT order_id FROM orders ORDER BY order_id LIMIT 1")
        for new in ("MixedCase_Order_A", "mixedcase_order_b", "Trailing_Space_Key  "):
            db.execute(
                "INSERT INTO orders SELECT %s, customer_id, order_status, order_purchase_timestamp, order_approved_at, "
                "order_delivered_carrier_date, order_delivered_customer_date, order_estimated_delivery_date, "
                "updated_at FROM orders WHERE order_id = %s",
                (new, template),
            )
            db.execute(
                "INSERT INTO order_items SELECT %s, order_item_id, product_id, seller_id, shipping_limit_date, price, "
                "freight_value, updated_at FROM order_items WHERE order_id = %s",
                (new, template),
            )
        (last_item,) = _one(db, "SELECT max(order_item_id) FROM order_items WHERE order_id = %s", (template,))
    # nothing loaded yet: the warehouse side has no rows, every source key is missing
    empty = _verify_direct(s, "orders")
    assert (empty.warehouse_rows, len(empty.missing), empty.extra) == (0, empty.source_rows, [])
    assert ("MixedCase_Order_A",) in empty.missing and ("Trailing_Space_Key",) in empty.missing
    extract_and_load(s, tables=tables)
    for kwargs in ({}, {"digits": 1, "fetch_rows": 3}):
        for t in tables:
            d = _verify_direct(s, t, **kwargs)
            assert d.equal and d.source_rows == d.warehouse_rows > 0, d.summary()
    with open_source(s.source_url) as db:
        # a key re-inserted with other case is another key (extra + missing), not equal nor changed
        db.execute(
            "UPDATE orders SET order_id = 'MIXEDCASE_ORDER_A', updated_at = updated_at "
            "WHERE order_id = 'MixedCase_Order_A'"
        )
        db.execute(  # content changed, cursor written back: a difference
            "UPDATE orders SET order_status = 'canceled', updated_at = updated_at WHERE order_id = 'MIXEDCASE_ORDER_B'"
        )
        db.execute("UPDATE orders SET order_status = 'canceled' WHERE order_id = %s", (template,))  # cursor bumped
        db.execute(  # a cent on a composite key whose first column has mixed case
            "UPDATE order_items SET price = price + 0.01, updated_at = updated_at "
            "WHERE order_id = 'mixedcase_order_b' AND order_item_id = 1"
        )
    for kwargs in ({}, {"digits": 1, "fetch_rows": 3}):
        orders = _verify_direct(s, "orders", **kwargs)
        assert orders.extra == [("MixedCase_Order_A",)], orders.summary()
        assert orders.missing == [("MIXEDCASE_ORDER_A",)]
        assert orders.changed == [("mixedcase_order_b",)]
        assert orders.in_flight == 1  # changed after the last extract: the next one brings it
        items = _verify_direct(s, "order_items", **kwargs)
        assert items.changed == [("mixedcase_order_b", 1)], items.summary()
        assert (items.extra, items.missing) == ([], [])
        if kwargs:  # 16 first buckets, then the differing ones (over 3 rows) split 256 ways
            assert orders.ranges > 16 and orders.queries > 2, orders.summary()
    # every source row gone: all extra
    with open_source(s.source_url) as db:
        db.execute("DELETE FROM order_items")
    gone = _verify_direct(s, "order_items")
    assert (gone.source_rows, gone.missing, gone.changed) == (0, [], [])
    assert len(gone.extra) == gone.warehouse_rows > 0
    assert ("MixedCase_Order_A", 1) in gone.extra and ("Trailing_Space_Key", last_item) in gone.extra


def test_verify_with_a_postgres_warehouse(pg_settings, olist_csv):
    """The buckets and sums computed by PostgreSQL over its raw table match SQLite's (a composite
    key, a cent, a delete), at the default level and through a recursion."""
    s = pg_settings
    fill_source(s, olist_csv, ["order_items"])
    extract_and_load(s, tables=["order_items"])
    (equal,) = pipeline.verify(s, quiet(), ["order_items"])
    assert equal.equal and equal.source_rows == equal.warehouse_rows > 0, equal.summary()
    with open_source(s.source_url) as db:
        db.execute('DROP TRIGGER IF EXISTS "order_items__touch"')
        item, seq = _one(db, "SELECT order_id, order_item_id FROM order_items ORDER BY order_id LIMIT 1 OFFSET 9")
        db.execute(
            "UPDATE order_items SET price = printf('%.2f', CAST(price AS REAL) + 0.01) "
            "WHERE order_id = ? AND order_item_id = ?",
            (item, seq),
        )
        gone = _one(db, "SELECT order_id, order_item_id FROM order_items ORDER BY order_id DESC LIMIT 1")
        db.execute("DELETE FROM order_items WHERE order_id = ? AND order_item_id = ?", gone)
    for kwargs in ({}, {"digits": 1, "fetch_rows": 3}):
        d = _verify_direct(s, "order_items", **kwargs)
        assert (d.changed, d.extra, d.missing) == ([(item, seq)], [gone], []), d.summary()
