"""Extract and load: batches, manifests, watermarks, exactly-once loads, crashes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from loaders import layout, pipeline
from loaders.config import Settings
from loaders.declarations import declared_tables
from loaders.extract import read_watermark, readers
from loaders.layout import MANIFEST
from loaders.load import list_batches
from loaders.runs import RunFailed
from loaders.sources import open_source
from loaders.store import ObjectStore, StoreError

from .helpers import extract_and_load, fill_source, quiet, raw_snapshot, warehouse_rows

SMALL = ["orders", "order_items", "order_reviews"]


@pytest.fixture(params=["sqlite", "mysql"])
def source_settings(request, settings: Settings) -> Settings:
    if request.param == "mysql":
        return settings.with_(source_url=request.getfixturevalue("mysql_url"))
    return settings


def source_count(settings: Settings, table: str) -> int:
    with open_source(settings.source_url) as db:
        return db.row_count(declared_tables(settings.project_dir)[table])


def raw_count(settings: Settings, table: str) -> int:
    return warehouse_rows(settings, f'SELECT count(*) FROM raw."{table}"')[0][0]


def test_historical_then_incremental_moves_every_row_once(source_settings, olist_csv, monkeypatch, caplog):
    # Two key ranges in parallel, in pages of 40, 80, then 150 rows: every row must still arrive
    # exactly once.
    import logging

    monkeypatch.setattr(readers, "FIRST_PAGE_ROWS", 40)
    s = source_settings.with_(part_rows=400, page_rows=150, extract_streams=2)
    fill_source(s, olist_csv, SMALL)
    with caplog.at_level(logging.DEBUG, logger="loaders.extract"):
        batches, loads = extract_and_load(s, "auto", SMALL)
    pages = [m.split(" LIMIT ")[1] for m in caplog.messages if m.startswith("extract SQL for orders")]
    assert pages.count("40") == 2  # the first page of each range
    assert {"80", "150"} <= set(pages) <= {"40", "80", "150"}
    assert {b.mode for b in batches} == {"historical"}
    for table in SMALL:
        assert raw_count(s, table) == source_count(s, table)
    pk = "order_id, order_item_id"
    assert warehouse_rows(s, f"SELECT count(*) FROM (SELECT DISTINCT {pk} FROM raw.order_items)") == [
        (source_count(s, "order_items"),)
    ]
    items = next(b for b in batches if b.table == "order_items")
    assert len(items.parts) > 1  # large tables are split into parts
    manifest = json.loads(Path(items.manifest).read_text())
    assert manifest["row_count"] == sum(p["rows"] for p in manifest["parts"]) == items.rows
    assert [c["name"] for c in manifest["columns"]][:2] == ["order_id", "order_item_id"]
    assert all(len(p["sha256"]) == 64 and p["bytes"] > 0 for p in manifest["parts"])

    # No source change: extract and load again add no row.
    before = raw_snapshot_small(s)
    batches, loads = extract_and_load(s, "auto", SMALL)
    assert {b.mode for b in batches} == {"current"}
    assert all(r.rows_inserted == 0 for r in loads if r.status == "loaded")
    assert raw_snapshot_small(s) == before

    # A changed row arrives in the next run, as a new version.
    with open_source(s.source_url) as db:
        q = db.quote
        order_id = db.execute(f"SELECT {q('order_id')} FROM {q('orders')} ORDER BY {q('order_id')} LIMIT 1")[0][0]
        db.execute(f"UPDATE {q('orders')} SET {q('order_status')} = 'canceled' WHERE {q('order_id')} = '{order_id}'")
    extract_and_load(s, "auto", SMALL)
    versions = warehouse_rows(
        s, f"SELECT order_status FROM raw.orders WHERE order_id = '{order_id}' ORDER BY updated_at"
    )
    assert versions[-1] == ("canceled",) and len(versions) == 2
    assert raw_count(s, "orders") == source_count(s, "orders") + 1


def raw_snapshot_small(settings: Settings) -> dict:
    return raw_snapshot(settings, SMALL)


def _insert_late_order(settings: Settings, watermark) -> None:
    """A row a transaction stamped 30 s before the extract's upper bound but committed after it."""
    late = (watermark - timedelta(seconds=30)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    with open_source(settings.source_url) as db:
        db.execute(
            "INSERT INTO orders (order_id, customer_id, order_status, order_purchase_timestamp, "
            "order_estimated_delivery_date, updated_at) VALUES (?, ?, 'created', '2018-10-17 10:00:00', "
            "'2018-11-01 00:00:00', ?)",
            ("f" * 32, "e" * 32, late),
        )


def test_row_committed_late_inside_the_lookback_is_not_missed(settings, olist_csv):
    fill_source(settings, olist_csv, ["orders"])
    extract_and_load(settings, "historical", ["orders"])
    store = ObjectStore(settings.store_url, settings)
    watermark = read_watermark(store, declared_tables(settings.project_dir)["orders"])
    _insert_late_order(settings, watermark)
    # The next run catches it (test_lookback_zero_would_miss_the_late_row is the control), once.
    extract_and_load(settings, "current", ["orders"])
    assert warehouse_rows(settings, f"SELECT count(*) FROM raw.orders WHERE order_id = '{'f' * 32}'") == [(1,)]
    extract_and_load(settings, "current", ["orders"])
    assert warehouse_rows(settings, f"SELECT count(*) FROM raw.orders WHERE order_id = '{'f' * 32}'") == [(1,)]


def test_lookback_zero_would_miss_the_late_row(settings, olist_csv):
    """The control for the test above: the lookback is what catches late commits."""
    s = settings.with_(lookback_seconds=0)
    fill_source(s, olist_csv, ["orders"])
    extract_and_load(s, "historical", ["orders"])
    watermark = read_watermark(ObjectStore(s.store_url, s), declared_tables(s.project_dir)["orders"])
    _insert_late_order(s, watermark)
    extract_and_load(s, "current", ["orders"])
    assert warehouse_rows(s, f"SELECT count(*) FROM raw.orders WHERE order_id = '{'f' * 32}'") == [(0,)]


def test_current_extract_without_watermark_is_refused(settings, olist_csv):
    fill_source(settings, olist_csv, ["orders"])
    with pytest.raises(RunFailed, match="'orders' has no watermark"):
        pipeline.extract(settings, quiet(), "current", ["orders"])


def _run_killed(settings: Settings, patch: str, argv: list[str]) -> int:
    """Run the CLI in a child process that SIGKILLs itself at the patched point."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        {patch}
        from loaders.cli import main
        main({["--data-dir", str(settings.data_dir), *argv]!r})
    """)
    env = {**os.environ, "DWH_PART_ROWS": str(settings.part_rows)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    return result.returncode


def _uninterrupted_twin(settings: Settings, tmp_path: Path) -> Settings:
    """The same source, extracted and loaded without interruption into another store/warehouse."""
    twin = settings.with_(store_url=str(tmp_path / "twin-lake"), duckdb_path=str(tmp_path / "twin.duckdb"))
    extract_and_load(twin, "auto", SMALL)
    return twin


def test_kill_between_parts_and_manifest_then_rerun(settings, olist_csv, tmp_path):
    s = settings.with_(part_rows=300)
    fill_source(s, olist_csv, SMALL)
    code = _run_killed(
        s,
        "import loaders.extract.batch as e; e.write_manifests = die",
        ["extract", *sum((["--table", t] for t in SMALL), [])],
    )
    assert code == -9
    store = ObjectStore(s.store_url, s)
    orphans = store.glob("olist/orders/historical/batch=*/part-*.parquet")
    assert orphans, "the killed run should have left parts behind"
    assert store.glob("olist/orders/historical/batch=*/" + MANIFEST) == []
    assert read_watermark(store, declared_tables(s.project_dir)["orders"]) is None  # not advanced
    # Nothing published, so nothing to load; then a normal re-run.
    assert [r for r in pipeline.load(s, quiet(), SMALL) if r.status == "loaded"] == []
    extract_and_load(s, "auto", SMALL)
    twin = _uninterrupted_twin(s, tmp_path)
    assert raw_snapshot_small(s) == raw_snapshot_small(twin)
    for table in SMALL:
        assert raw_count(s, table) == source_count(s, table)


def test_kill_between_copy_and_commit_then_rerun(settings, olist_csv, tmp_path):
    s = settings
    fill_source(s, olist_csv, SMALL)
    pipeline.extract(s, quiet(), "historical", SMALL)
    patch = textwrap.dedent("""
        import loaders.warehouses as w
        original = w.DuckDBWarehouse.execute
        def execute(self, sql):
            if sql.startswith('INSERT INTO "raw"."_load_log"'):
                die()
            return original(self, sql)
        w.DuckDBWarehouse.execute = execute
    """).replace("\n", "\n        ")
    code = _run_killed(s, patch, ["load"])
    assert code == -9
    # The raw insert ran but was never committed: nothing of the batch is there.
    assert raw_count(s, "orders") == 0  # the first table's insert ran, then the process died
    assert warehouse_rows(s, 'SELECT count(*) FROM raw."_load_log"') == [(0,)]
    reports = pipeline.load(s, quiet(), SMALL)
    assert {r.status for r in reports} == {"loaded"}
    assert [r for r in pipeline.load(s, quiet(), SMALL) if r.status == "loaded"] == []  # exactly once
    twin = _uninterrupted_twin(s, tmp_path)
    assert raw_snapshot_small(s) == raw_snapshot_small(twin)


def test_corrupted_part_is_refused_and_nothing_is_loaded(settings, olist_csv):
    fill_source(settings, olist_csv, ["orders"])
    pipeline.extract(settings, quiet(), "historical", ["orders"])
    store = ObjectStore(settings.store_url, settings)
    (part,) = store.glob("olist/orders/historical/batch=*/part-*.parquet")
    path = Path(store.full(part))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RunFailed, match=r"part-00000\.parquet is corrupted.*nothing was loaded"):
        pipeline.load(settings, quiet(), ["orders"])
    assert raw_count(settings, "orders") == 0
    path.write_bytes(bytes(data[:100]))  # truncated: the size no longer matches either
    with pytest.raises(RunFailed, match="100 bytes, the manifest says"):
        pipeline.load(settings, quiet(), ["orders"])


@pytest.mark.parametrize("codec", ["snappy", "zstd", "none"])
def test_parts_compress_every_column_where_the_codec_pays(settings, olist_csv, codec):
    """Snappy leaves the 32-character hex ids (CHAR(32)) and the row hashes uncompressed and compresses the rest;
    zstd compresses every column; none compresses nothing. The rows read back the same."""
    import pyarrow.parquet as pq

    s = settings.with_(parquet_compression=codec)
    fill_source(s, olist_csv, ["orders"])
    pipeline.extract(s, quiet(), "historical", ["orders"])
    store = ObjectStore(s.store_url, s)
    (part,) = store.glob("olist/orders/historical/batch=*/part-*.parquet")
    meta = pq.ParquetFile(store.full(part)).metadata.row_group(0)
    codecs = {meta.column(i).path_in_schema: meta.column(i).compression for i in range(meta.num_columns)}
    hexes = ("order_id", "customer_id", "_row_hash")
    ids = dict.fromkeys(hexes, "UNCOMPRESSED") if codec == "snappy" else {}
    every = "UNCOMPRESSED" if codec == "none" else codec.upper()
    assert codecs == {name: ids.get(name, every) for name in codecs}
    assert pq.read_table(store.full(part)).num_rows == source_count(s, "orders")


def test_batch_without_its_key_column_is_refused(settings, olist_csv):
    fill_source(settings, olist_csv, ["sellers"])
    pipeline.extract(settings, quiet(), "historical", ["sellers"])
    store = ObjectStore(settings.store_url, settings)
    (path,) = store.glob("olist/sellers/historical/batch=*/" + MANIFEST)
    manifest = store.read_json(path)
    manifest["columns"] = manifest["columns"][1:]
    store.write_json(path, manifest)
    with pytest.raises(RunFailed, match=r"lacks the key column\(s\) \['seller_id'\] of table 'sellers'"):
        pipeline.load(settings, quiet(), ["sellers"])


def test_unknown_table_is_named(settings):
    from loaders.declarations import DeclarationError

    with pytest.raises(DeclarationError, match="unknown table.*payments"):
        pipeline.extract(settings, quiet(), "auto", ["payments"])


def test_batches_are_listed_in_time_order(settings, olist_csv):
    fill_source(settings, olist_csv, ["sellers"])
    pipeline.extract(settings, quiet(), "historical", ["sellers"])
    pipeline.extract(settings, quiet(), "current", ["sellers"])
    store = ObjectStore(settings.store_url, settings)
    batches = list_batches(store, declared_tables(settings.project_dir)["sellers"])
    assert [(layout.parse_batch_folder(b[1]) or ("?",))[0] for b in batches] == ["historical", "current"]


def test_missing_store_folder_is_created_and_bad_url_refused(tmp_path):
    ObjectStore(str(tmp_path / "new" / "lake"))
    assert (tmp_path / "new" / "lake").is_dir()
    with pytest.raises(StoreError, match="DWH_STORE_URL"):
        ObjectStore("gs://bucket/lake")


def test_key_literals_are_escaped(settings, mysql_url):
    with open_source(settings.source_url, create=True) as lite, open_source(mysql_url) as my:
        assert lite.literal("a'b\\c") == "'a''b\\c'"
        assert my.literal("a'b\\c") == "'a''b\\\\c'"
        assert my.literal(42) == "42"
        assert my.execute(f"SELECT {my.literal(chr(39) + chr(92) + 'x')}")[0][0] == "'\\x"


def test_mysql_zero_dates_are_extracted_as_null(settings, mysql_url, olist_csv, caplog):
    """A MySQL source written with a lax sql_mode holds zero dates. The historical read selects
    plain columns first; the ranges that meet a zero date read on with it mapped to NULL. Every
    row still arrives once, and the incremental read maps them too."""
    import logging

    s = settings.with_(source_url=mysql_url, page_rows=100, extract_streams=2)
    fill_source(s, olist_csv, ["orders"])
    with open_source(mysql_url) as db:
        ids = [r[0] for r in db.execute("SELECT order_id FROM orders ORDER BY order_id")]
        # the first row, one in the middle of a page, the last row: both ranges meet one
        zeroed = {
            ids[0]: "order_approved_at",
            ids[len(ids) // 2 + 37]: "order_delivered_customer_date",
            ids[-1]: "order_purchase_timestamp",
        }
        with db.transaction():
            db.execute("SET SESSION sql_mode = ''")
            for order_id, column in zeroed.items():
                db.execute(f"UPDATE orders SET `{column}` = '0000-00-00 00:00:00' WHERE order_id = %s", (order_id,))
        assert (
            db.execute(
                "SELECT count(*) FROM orders WHERE order_approved_at = '0000-00-00 00:00:00' "
                "OR order_purchase_timestamp = '0000-00-00 00:00:00' "
                "OR order_delivered_customer_date = '0000-00-00 00:00:00'"
            )[0][0]
            == 3
        )
    with caplog.at_level(logging.INFO, logger="loaders.extract"):
        extract_and_load(s, "historical", ["orders"])
    assert "zero dates mapped to NULL" in caplog.text
    assert raw_count(s, "orders") == len(ids)
    assert warehouse_rows(s, "SELECT count(DISTINCT order_id) FROM raw.orders") == [(len(ids),)]
    for order_id, column in zeroed.items():
        assert warehouse_rows(s, f"SELECT {column} FROM raw.orders WHERE order_id = '{order_id}'") == [(None,)]
    # a zero date written after the historical run: the incremental window maps it as well
    with open_source(mysql_url) as db, db.transaction():
        db.execute("SET SESSION sql_mode = ''")
        db.execute(
            "UPDATE orders SET order_delivered_carrier_date = '0000-00-00 00:00:00' WHERE order_id = %s", (ids[5],)
        )
    extract_and_load(s, "current", ["orders"])
    assert warehouse_rows(
        s,
        "SELECT order_delivered_carrier_date FROM raw.orders WHERE order_id = "
        f"'{ids[5]}' ORDER BY _loaded_at DESC, _batch_id DESC LIMIT 1",
    ) == [(None,)]


def test_plain_historical_read_when_there_are_no_zero_dates(settings, mysql_url, olist_csv, caplog):
    import logging

    s = settings.with_(source_url=mysql_url, page_rows=100, extract_streams=3)
    fill_source(s, olist_csv, ["orders"])
    with caplog.at_level(logging.DEBUG, logger="loaders.extract"):
        extract_and_load(s, "historical", ["orders"])
    assert "NULLIF" not in caplog.text and "zero dates mapped" not in caplog.text
    assert "extract SQL for orders: SELECT `order_id`" in caplog.text
    assert raw_count(s, "orders") == source_count(s, "orders")
