"""`_row_hash` computed by the warehouse at the load (issue 18) gives the same versions as the
hash batches carried when the extract computed it: a raw table holds both, and a re-read of the
same content must add nothing whichever way each copy was hashed (contract 9)."""

from __future__ import annotations

from dataclasses import asdict

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loaders import layout, pipeline
from loaders.declarations import CHANGE_COLUMNS, ROW_HASH_COLUMN, Table, declared_tables
from loaders.extract.batch import new_batch_id
from loaders.load.batches import list_batches
from loaders.load.loader import ensure_raw_tables, load_batch
from loaders.manifest import Part, batch_table, read_manifest, write_manifests
from loaders.sources import open_source
from loaders.store import ObjectStore
from loaders.verify.checksum import arrow_row_hashes
from loaders.warehouses import open_warehouse

from .helpers import fill_source, quiet, warehouse_rows

TABLES = ["orders", "order_items", "geolocation", "customers"]
"""Char ids, varchar, timestamps with and without fractions and NULLs, decimals, bigint,
doubles, accented text."""
TRICKY_DOUBLES = [
    (-949427205145423.4, 0.1234565),  # 16 digits: PostgreSQL's own cast kept 15
    (123456789.1234565, -23.5456785),  # on the rounding boundary once times 10^6
    (1e31, -2.5e-6),
    (-0.0, 46.63929204800168),
]


def _tricky_source(s) -> None:
    """Make the source hold the values whose canonical text engines used to disagree on."""
    with open_source(s.source_url) as db:
        ids = [r[0] for r in db.execute("SELECT geolocation_id FROM geolocation ORDER BY geolocation_id LIMIT 4")]
        for gid, (lat, lng) in zip(ids, TRICKY_DOUBLES, strict=True):
            db.execute(
                "UPDATE geolocation SET geolocation_lat = ?, geolocation_lng = ? WHERE geolocation_id = ?",
                (lat, lng, gid),
            )
        db.execute(
            "UPDATE geolocation SET geolocation_city = ? WHERE geolocation_id = ?", ("são paulo 日本 😀 x'y\\", ids[0])
        )
        first = db.execute("SELECT customer_id FROM customers ORDER BY customer_id LIMIT 1")[0][0]
        db.execute("UPDATE customers SET customer_city = ? WHERE customer_id = ?", ("  Ribeirão Prêto  ", first))


def _as_extracted_before(store: ObjectStore, table: Table, folder: str) -> tuple[str, dict[tuple, str]]:
    """A copy of the published batch in `folder` as the extract wrote it before issue 18:
    version-1 manifest, `_row_hash` in the parts (computed with the extract's own code,
    `arrow_row_hashes`) between `_op` and `_change_seq`. Returns the copy's folder and the hash
    of every row by primary key."""
    manifest = read_manifest(store, table, folder)
    extracted = batch_table(store, table, folder, manifest)
    copy = layout.batch_dir(table.name, manifest["mode"], new_batch_id())
    parts: list[Part] = []
    hashes: dict[tuple, str] = {}
    for i, part in enumerate(manifest["parts"]):
        data = pq.read_table(store.full(f"{folder}/{part['path']}"))
        page = data.combine_chunks().to_batches()[0]
        row_hashes = arrow_row_hashes(page, extracted.columns)
        at = data.schema.get_field_index("_op") + 1
        data = data.add_column(at, pa.field(ROW_HASH_COLUMN, pa.string()), [row_hashes])
        keys = zip(*(data.column(k).to_pylist() for k in table.primary_key), strict=True)
        hashes.update(zip(keys, row_hashes.to_pylist(), strict=True))
        path = layout.batch_part(copy, i)
        sink = store.open_part(path)
        pq.write_table(data, sink)
        sink.close()
        parts.append(Part(path, data.num_rows, sink.bytes, sink.sha256))
    old = {
        **manifest,
        "version": 1,
        "batch_id": copy.rsplit("=", 1)[1],
        "change_columns": list(CHANGE_COLUMNS),
        "parts": [{**asdict(p), "path": p.path.rsplit("/", 1)[1]} for p in parts],
    }
    write_manifests(store, copy, old, parts)
    return copy, hashes


@pytest.mark.parametrize("old_first", [True, False], ids=["extract-hashed-first", "load-hashed-first"])
@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_the_same_content_hashed_at_extract_or_at_load_is_one_version(engine, old_first, settings, olist_csv, request):
    s = request.getfixturevalue("pg_settings") if engine == "postgres" else settings
    fill_source(s, olist_csv, TABLES)
    _tricky_source(s)
    pipeline.extract(s, quiet(), "historical", TABLES)
    store = ObjectStore(s.store_url, s)
    tables = [declared_tables(s.project_dir)[t] for t in TABLES]
    plan = []
    for table in tables:
        folder = list_batches(store, table)[-1][1]
        assert ROW_HASH_COLUMN not in pq.read_schema(store.full(f"{folder}/part-00000.parquet")).names
        old, hashes = _as_extracted_before(store, table, folder)
        plan.append((table, [old, folder] if old_first else [folder, old], hashes))
    wh = open_warehouse(s, store)
    with wh:
        ensure_raw_tables(wh, tables)
        for table, folders, hashes in plan:
            first, second = (load_batch(wh, table, f) for f in folders)
            assert (first.status, first.rows_inserted) == ("loaded", len(hashes)), table.name
            # the second copy of the same content: no new version, and no tombstone
            assert (second.status, second.rows_in_batch, second.rows_inserted) == ("loaded", len(hashes), 0), table.name
    for table, _, hashes in plan:
        keys = ", ".join(table.primary_key)
        raw = warehouse_rows(s, f"SELECT {keys}, _row_hash FROM raw.{table.name}")
        assert {tuple(r[:-1]): r[-1] for r in raw} == hashes, table.name  # byte for byte, every row
    tricky = warehouse_rows(s, "SELECT count(*) FROM raw.geolocation WHERE geolocation_lat = -949427205145423.4")
    assert tricky == [(1,)]


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_a_changed_row_is_a_new_version_when_the_load_hashes(engine, settings, olist_csv, request):
    """The control: the load's hash does tell content apart (a cent, under an unchanged cursor)."""
    s = request.getfixturevalue("pg_settings") if engine == "postgres" else settings
    fill_source(s, olist_csv, ["order_items"])
    pipeline.extract(s, quiet(), "historical", ["order_items"])
    pipeline.load(s, quiet(), ["order_items"])
    with open_source(s.source_url) as db:
        order_id = db.execute("SELECT order_id FROM order_items ORDER BY order_id LIMIT 1")[0][0]
        db.execute("UPDATE order_items SET price = price + 0.01 WHERE order_id = ? AND order_item_id = 1", (order_id,))
    pipeline.extract(s, quiet(), "historical", ["order_items"])
    reports = pipeline.load(s, quiet(), ["order_items"])
    assert [r.rows_inserted for r in reports if r.status == "loaded"] == [1]
    versions = warehouse_rows(
        s, f"SELECT count(DISTINCT _row_hash) FROM raw.order_items WHERE order_id = '{order_id}' AND order_item_id = 1"
    )
    assert versions == [(2,)]
