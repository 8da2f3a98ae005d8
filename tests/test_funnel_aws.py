"""The funnel lake on S3 with the Glue Data Catalog, against moto's server on a loopback port."""

from __future__ import annotations

import boto3
import pyarrow.parquet as pq
import pytest

from loaders import pipeline
from loaders.funnel import GlueCatalog
from loaders.store import ObjectStore
from olist_demo.funnel_generator import generate_funnel

from .helpers import quiet


@pytest.fixture
def aws_settings(settings, s3_endpoint, s3_bucket):
    return settings.with_(
        store_url=f"s3://{s3_bucket}/olist",
        s3_endpoint_url=s3_endpoint,
        glue_endpoint_url=s3_endpoint,
        glue_database="olist_lake_test",
        funnel_block_bytes=128 * 1024,
    )


def test_landing_parquet_and_glue_partitions_on_aws(aws_settings, olist_csv, tmp_path, s3_endpoint, s3_bucket):
    s = aws_settings
    generate_funnel(tmp_path, olist_csv, rows_per_file=5_000, years=(2017,), seed=3)
    pipeline.funnel_land(s, quiet(), [tmp_path / "2017_funnel.csv"])
    (report,) = pipeline.funnel_convert(s, quiet())
    assert report.rows_written == 5_000

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="olist/")["Contents"]]
    assert "olist/landing/funnel/2017_funnel.csv" in keys
    parquet = sorted(k for k in keys if k.endswith(".parquet"))
    assert parquet == sorted(f"olist/lake/funnel_events/year=2017/month={m}/2017_funnel.parquet" for m in range(1, 13))
    store = ObjectStore(s.store_url, s)
    with store.fs.open(f"{s3_bucket}/{parquet[0]}", "rb") as handle:
        assert pq.ParquetFile(handle).metadata.num_rows > 0
    assert not [k for k in keys if "/tmp/" in k]

    catalog = GlueCatalog(s, store)
    assert catalog.partitions() == [(2017, m) for m in range(1, 13)]
    glue = boto3.client("glue", endpoint_url=s3_endpoint, region_name="us-east-1")
    table = glue.get_table(DatabaseName="olist_lake_test", Name="funnel_events")["Table"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{s3_bucket}/olist/lake/funnel_events/"
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year", "month"]
    one = glue.get_partition(DatabaseName="olist_lake_test", TableName="funnel_events", PartitionValues=["2017", "3"])
    assert one["Partition"]["StorageDescriptor"]["Location"].endswith("/lake/funnel_events/year=2017/month=3/")

    # Converting again (the S3 trigger firing twice) keeps one partition per month.
    pipeline.funnel_convert(s, quiet(), file=f"s3://{s3_bucket}/olist/landing/funnel/2017_funnel.csv", force=True)
    assert catalog.partitions() == [(2017, m) for m in range(1, 13)]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="olist/lake/funnel_events/")["Contents"]]
    assert len([k for k in keys if k.endswith(".parquet")]) == 12


def test_glue_needs_an_s3_store(settings):
    from loaders.config import ConfigError

    s = settings.with_(glue_database="x")
    with pytest.raises(ConfigError, match="DWH_GLUE_DATABASE is set but DWH_STORE_URL is not s3://"):
        GlueCatalog(s, ObjectStore(s.store_url, s))
