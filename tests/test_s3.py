"""S3 through moto's server on a loopback port, with the real boto3/s3fs clients."""

from __future__ import annotations

import boto3
import pytest

from loaders import pipeline
from loaders.store import ObjectStore, StoreError

from .helpers import extract_and_load, fill_source, quiet, warehouse_rows

TABLES = ["orders", "order_payments"]


def test_extract_to_s3_and_load_from_s3(settings, olist_csv, s3_endpoint, s3_bucket, mysql_url):
    s = settings.with_(
        source_url=mysql_url, store_url=f"s3://{s3_bucket}/lake", s3_endpoint_url=s3_endpoint, part_rows=500
    )
    fill_source(s, olist_csv, TABLES)
    batches, loads = extract_and_load(s, "auto", TABLES)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="lake/olist/orders/")["Contents"]]
    assert any(k.endswith("/_manifest.json") for k in keys)
    assert any(k.endswith("/_copy.manifest") for k in keys)
    assert sum(k.endswith(".parquet") for k in keys) == len(next(b for b in batches if b.table == "orders").parts) > 1
    assert "lake/olist/orders/_state.json" in keys
    copy_manifest = ObjectStore(s.store_url, s).read_json(
        next(k for k in keys if k.endswith("_copy.manifest")).removeprefix("lake/")
    )
    assert all(
        e["url"].startswith(f"s3://{s3_bucket}/lake/olist/orders/historical/") and e["meta"]["content_length"] > 0
        for e in copy_manifest["entries"]
    )
    for b in batches:
        assert warehouse_rows(s, f'SELECT count(*) FROM raw."{b.table}"') == [(b.rows,)]
    # Exactly once, on S3 too.
    _, again = extract_and_load(s, "auto", TABLES)
    assert all(r.rows_inserted == 0 for r in again if r.status == "loaded")
    for b in batches:
        assert warehouse_rows(s, f'SELECT count(*) FROM raw."{b.table}"') == [(b.rows,)]


def test_bucket_that_does_not_exist_is_named(settings, s3_endpoint, olist_csv):
    s = settings.with_(store_url="s3://no-such-bucket-here/lake", s3_endpoint_url=s3_endpoint)
    fill_source(s, olist_csv, ["sellers"])
    with pytest.raises(StoreError, match="bucket 'no-such-bucket-here' does not exist"):
        pipeline.extract(s, quiet(), "auto", ["sellers"])
