"""`dwh verify` when a table's source schema has changed (issues 12 and 14, contract 13).

A declared column dropped or renamed in the source stops that table's extract; a verify of the
same table must stop the same way, with the extract's one line, and verify (and repair) the
other tables. Without the check, SQLite reads a missing double-quoted column as a string
literal, so the verify compared hashes of the column's name and the repair crashed converting it.
"""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from loaders import layout, pipeline
from loaders.cli import main
from loaders.config import Settings
from loaders.report import Reporter
from loaders.runs import RunFailed
from loaders.sources import open_source
from loaders.store import ObjectStore

from .helpers import extract_and_load, fill_source

TABLES = ["sellers", "products"]


@pytest.fixture(params=["sqlite", "mysql"])
def source_settings(request, settings: Settings) -> Settings:
    if request.param == "mysql":
        return settings.with_(source_url=request.getfixturevalue("mysql_url"))
    return settings


def _raw_ops(s: Settings) -> dict[str, str]:
    """seller_id -> _op of the latest version of each seller in raw ('d': a tombstone)."""
    with duckdb.connect(s.duckdb_path, read_only=True) as con:
        rows = con.execute(
            "SELECT seller_id, _op FROM (SELECT *, row_number() OVER (PARTITION BY seller_id "
            "ORDER BY updated_at DESC, _batch_id DESC, _change_seq DESC) AS rn FROM raw.sellers) WHERE rn = 1"
        ).fetchall()
    return dict(rows)


def _manifests(s: Settings, table: str) -> list[str]:
    return sorted(ObjectStore(s.store_url, s).glob(layout.manifest_glob(table)))


def test_verify_stops_a_table_whose_declared_column_is_gone_and_repairs_the_others(source_settings, olist_csv):
    s = source_settings.with_(lookback_seconds=0)
    fill_source(s, olist_csv, TABLES)
    extract_and_load(s, "auto", TABLES)
    with open_source(s.source_url) as db:
        db.execute(f"ALTER TABLE {db.quote('products')} DROP COLUMN {db.quote('product_photos_qty')}")
        (seller,) = db.execute(f"SELECT seller_id FROM {db.quote('sellers')} ORDER BY seller_id LIMIT 1")[0]
        # a change the cursor does not show: only a verify finds it
        db.execute(f"DELETE FROM {db.quote('sellers')} WHERE seller_id = {db.paramstyle}", (seller,))
    lines: list[str] = []
    with pytest.raises(RunFailed, match=r"verify products failed: .*'products'.*'product_photos_qty'") as failed:
        pipeline.verify(s, Reporter(echo=lines.append), TABLES, repair=True)
    assert [f.unit for f in failed.value.failures] == ["products"]
    stopped = [x for x in lines if x.startswith("  products: not verified:")]
    assert len(stopped) == 2, lines  # before and after the repair of sellers, one line each time
    assert "product_photos_qty" in stopped[0]
    assert _raw_ops(s)[seller] == "d"  # sellers was verified and repaired: a tombstone
    assert any(x.startswith("  sellers: equal") for x in lines), lines
    assert any("cost:" in x for x in lines)

    env = {"DWH_DATA_DIR": str(s.data_dir), "DWH_SOURCE_URL": s.source_url}
    result = CliRunner().invoke(main, ["verify", "--table", "products", "--table", "sellers"], env=env)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "product_photos_qty" in result.output
    assert "sellers: equal" in result.output


def test_a_repair_that_meets_a_value_the_declaration_cannot_hold_stops_that_table_only(settings, mysql_url, olist_csv):
    """A widened source column (DECIMAL(10,2) -> (12,2)) whose new value does not fit the declared
    type, written without moving the cursor: verify names the row as changed, the repair of its
    table stops with the extract's one line (nothing written), and another table's deletion is
    still repaired; the table stays DIFFERENT until the type is declared."""
    s = settings.with_(source_url=mysql_url, lookback_seconds=0)
    fill_source(s, olist_csv, ["sellers", "orders", "order_items"])
    extract_and_load(s, "auto", ["sellers", "orders", "order_items"])
    published = _manifests(s, "order_items")
    with open_source(s.source_url) as db:
        db.execute("ALTER TABLE order_items MODIFY price DECIMAL(12,2) NOT NULL")
        order_id, item = db.execute("SELECT order_id, order_item_id FROM order_items ORDER BY 1, 2 LIMIT 1")[0]
        db.execute(
            "UPDATE order_items SET price = 123456789.50, updated_at = updated_at WHERE order_id = %s "
            "AND order_item_id = %s",
            (order_id, item),
        )
        (seller,) = db.execute("SELECT seller_id FROM sellers ORDER BY seller_id LIMIT 1")[0]
        db.execute("DELETE FROM sellers WHERE seller_id = %s", (seller,))
    lines: list[str] = []
    try:
        diffs = pipeline.verify(s, Reporter(echo=lines.append), ["sellers", "order_items"], repair=True)
    except RunFailed as exc:  # the repair's build: this source holds three tables, not the whole shop
        diffs = exc.reports
    after = {d.table: d for d in diffs}
    assert after["sellers"].equal
    assert after["order_items"].changed == [(order_id, item)] and not after["order_items"].missing
    (stop,) = [x for x in lines if x.startswith("  order_items: not repaired: ")]
    assert f"table 'order_items', column 'price', key (order_id='{order_id}', order_item_id={item})" in stop
    assert "123456789.50" in stop and "decimal128(10, 2)" in stop
    assert "Traceback" not in "\n".join(lines)
    assert _raw_ops(s)[seller] == "d"
    assert _manifests(s, "order_items") == published  # nothing written for order_items
