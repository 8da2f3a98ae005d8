"""COPY parts sized for the cluster: a multiple of the slices, each 1 MB to the target size compressed."""

from __future__ import annotations

import pytest

from loaders import pipeline
from loaders.declarations import declared_tables
from loaders.extract import parts as parts_module
from loaders.extract.parts import MIN_COPY_PART_BYTES, plan_parts
from loaders.load import list_batches
from loaders.manifest import read_manifest
from loaders.sources import open_source
from loaders.store import ObjectStore

from .helpers import fill_source, quiet

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("total", "slices", "target", "expected"),
    [
        (5 * MB, 0, 256 * MB, 1),  # no slices configured
        (0, 4, 256 * MB, 1),
        (MB // 2, 4, 256 * MB, 1),  # under 1 MB: one part
        (5 * MB, 4, 256 * MB, 4),  # 1.25 MB each
        (5 * MB, 16, 256 * MB, 5),  # 16 parts would be under 1 MB: as many 1 MB parts as it fills
        (600 * MB, 4, 256 * MB, 4),  # 3 needed, rounded up to a multiple of 4
        (3 * 1024 * MB, 2, 256 * MB, 12),
        (3 * 1024 * MB, 16, 256 * MB, 16),
    ],
)
def test_plan_parts(total, slices, target, expected):
    assert plan_parts(total, slices, target) == expected


def test_plan_parts_rule_holds_over_a_range():
    for slices in (1, 2, 4, 16, 32):
        for total in [int(MB * 1.7**k) for k in range(30)]:
            n = plan_parts(total, slices, 256 * MB)
            if total / n >= MIN_COPY_PART_BYTES and n % slices == 0:
                assert total / n <= 256 * MB, (total, slices, n)
                assert n == slices or total / (n - slices) > 256 * MB  # the smallest such multiple
            else:  # too small for every slice to get 1 MB
                assert n == max(1, total // MIN_COPY_PART_BYTES) and total < slices * MB, (total, slices, n)


def _parts(settings, table_name):
    store = ObjectStore(settings.store_url, settings)
    table = declared_tables(settings.project_dir)[table_name]
    manifests = [read_manifest(store, table, folder) for _, folder in list_batches(store, table)]
    return [m["parts"] for m in manifests]


@pytest.mark.parametrize("slices", [2, 4, 16])
def test_historical_batch_is_split_for_the_slices(settings, olist_csv, monkeypatch, slices):
    # the test data is small: scale the 1 MB floor and the target down by the same kind of ratio
    monkeypatch.setattr(parts_module, "MIN_COPY_PART_BYTES", 1024)
    s = settings.with_(redshift_slices=slices, copy_part_bytes=6 * 1024)
    fill_source(s, olist_csv, ["order_items"])
    pipeline.extract(s, quiet(), "historical", ["order_items"])
    ((parts,),) = [_parts(s, "order_items")]
    total = sum(p["bytes"] for p in parts)
    with open_source(s.source_url) as db:
        (count,) = db.execute("SELECT count(*) FROM order_items")[0]
    assert sum(p["rows"] for p in parts) == count
    n = len(parts)

    assert n > 1 and (n % slices == 0 or (n < slices and total / n >= 1024)), (n, total)
    # after the first part (at least the 256-row probe), equal shares; the last takes the rest
    rest = [p["rows"] for p in parts[1:-1]]
    assert max(rest) - min(rest) <= 1 and parts[-1]["rows"] <= max(rest), [p["rows"] for p in parts]
    assert max(p["bytes"] for p in parts[1:]) <= 2 * 6 * 1024  # the target, within the estimate's error


def test_incremental_batch_stays_one_part(settings, olist_csv):
    s = settings.with_(redshift_slices=16, copy_part_bytes=6 * 1024)
    fill_source(s, olist_csv, ["order_items"])
    pipeline.extract(s, quiet(), "historical", ["order_items"])
    with open_source(s.source_url) as db:
        db.execute(
            "UPDATE order_items SET price = price + 1, shipping_limit_date = '2030-01-01 00:00:00' "
            "WHERE order_item_id = 1 AND order_id IN (SELECT order_id FROM order_items LIMIT 50)"
        )
    pipeline.extract(s, quiet(), "current", ["order_items"])
    batches = _parts(s, "order_items")
    assert len(batches) == 2 and len(batches[1]) == 1 and batches[1][0]["rows"] >= 1


def test_without_slices_parts_follow_part_rows(settings, olist_csv):
    s = settings.with_(part_rows=400)
    fill_source(s, olist_csv, ["order_items"])
    pipeline.extract(s, quiet(), "historical", ["order_items"])
    ((parts,),) = [_parts(s, "order_items")]
    assert [p["rows"] for p in parts[:-1]] == [400] * (len(parts) - 1) and parts[-1]["rows"] <= 400


def test_slices_setting_is_checked(settings):
    from loaders.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="DWH_REDSHIFT_SLICES"):
        Settings.from_env({"DWH_REDSHIFT_SLICES": "-1"}, data_dir=settings.data_dir)
    with pytest.raises(ConfigError, match="DWH_COPY_PART_BYTES"):
        Settings.from_env({"DWH_COPY_PART_BYTES": "0"}, data_dir=settings.data_dir)
