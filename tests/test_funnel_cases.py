"""The four shared funnel cases of issue 17 (../shared/cases/funnel-*, bad-funnel-file-blocks-run),
each with its right result. Inputs: tests/funnel_cases/ (copies of the cases' files).

* funnel-blank-lines: a file of 40 events ending in two empty lines converts whole.
* funnel-redelivery: a corrected file re-delivered under the same name and size is converted
  again and replaces its own rows (in the lake, and in PostgreSQL's raw.funnel_events).
* funnel-late-conversion: a file whose conversion started before, and ended after, another
  file's conversion and build still reaches marts.fact_funnel_events.
* bad-funnel-file-blocks-run: a funnel file over the reject ratio fails alone; `dwh run` still
  extracts, loads and builds the Olist tables, then exits non-zero naming the file.
"""

from __future__ import annotations

import csv
import hashlib
import re
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from loaders import pipeline
from loaders.cli import main
from loaders.errors import USER_ERRORS
from loaders.funnel import FunnelError
from loaders.runs import RunFailed
from loaders.store import ObjectStore
from loaders.warehouses import open_warehouse
from olist_demo.run import simulate

from .helpers import extract_and_load, fill_source, quiet, warehouse_rows

CASES = Path(__file__).parent / "funnel_cases"
STAMP = "%m/%d/%Y %I:%M %p"


def csv_events(path: Path) -> list[tuple]:
    """(session_id, event time, userid, product_id) of every row, read with the csv module."""
    with open(path, newline="", encoding="utf-8") as handle:
        return sorted(
            (r["session_id"], datetime.strptime(r["event_timestamp"], STAMP), r["userid"], r["product_id"])
            for r in csv.DictReader(handle)
        )


def lake_events(store: ObjectStore, stem: str) -> list[tuple]:
    rows = []
    for path in store.glob(f"lake/funnel_events/*/*/{stem}.parquet"):
        table = pq.read_table(store.full(path), columns=["session_id", "event_timestamp", "userid", "product_id"])
        rows += [tuple(r.values()) for r in table.to_pylist()]
    return sorted(rows)


def test_funnel_blank_lines_are_not_rows(settings):
    source = CASES / "2017_funnel_day340.csv"
    assert source.read_bytes().endswith(b"papelaria\r\n\r\n\r\n")  # the case: two empty lines at the end
    store = ObjectStore(settings.store_url, settings)
    pipeline.funnel_land(settings, quiet(), [source])
    result = CliRunner().invoke(main, ["funnel", "convert"], env={"DWH_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 0, result.output
    assert re.search(r"2017_funnel_day340.csv +40 rows read, +40 written;", result.output), result.output
    assert "rejected" not in result.output
    assert store.glob("rejects/funnel/*") == []
    assert lake_events(store, "2017_funnel_day340") == csv_events(source)
    assert len(csv_events(source)) == 40


def test_funnel_redelivery_with_the_same_size_replaces_its_rows(pg_settings):
    s = pg_settings
    store = ObjectStore(s.store_url, s)
    first, second = (CASES / "redelivery" / d / "2017_funnel_week45.csv" for d in ("delivery1", "delivery2"))
    assert first.stat().st_size == second.stat().st_size and first.read_bytes() != second.read_bytes()

    pipeline.funnel_land(s, quiet(), [first])
    pipeline.funnel_convert(s, quiet())
    pipeline.load(s, quiet())
    assert lake_events(store, "2017_funnel_week45") == csv_events(first)

    pipeline.funnel_land(s, quiet(), [second])
    (report,) = pipeline.funnel_convert(s, quiet())
    assert report.status == "converted" and report.rows_written == 10
    assert lake_events(store, "2017_funnel_week45") == csv_events(second)
    marker = store.read_json("state/funnel/2017_funnel_week45.json")
    assert marker["source_sha256"] == hashlib.sha256(second.read_bytes()).hexdigest()
    assert marker["published_at"] >= marker["converted_at"]

    pipeline.load(s, quiet())  # PostgreSQL's raw.funnel_events is copied from the lake
    with open_warehouse(s, store) as wh:
        rows = wh.execute(
            "SELECT session_id, event_timestamp, userid, product_id FROM raw.funnel_events ORDER BY session_id"
        )
    assert sorted(tuple(r) for r in rows) == csv_events(second)

    (again,) = pipeline.funnel_convert(s, quiet())  # the same content again: skipped
    assert again.status == "skipped"


def _late_files(folder: Path, olist_csv: Path, big_rows: int) -> tuple[Path, Path]:
    """The case's make_files.py: a large file of March 2019 and a small one of April 2019."""
    with open(olist_csv / "olist_products_dataset.csv", newline="", encoding="utf-8") as handle:
        products = [r["product_id"] for r in csv.DictReader(handle)][:50]
    with open(olist_csv / "olist_customers_dataset.csv", newline="", encoding="utf-8") as handle:
        customers = [r["customer_id"] for r in csv.DictReader(handle)][:50]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, n, month, prefix in (("2019_03_funnel.csv", big_rows, 3, "b"), ("2019_04_funnel.csv", 1000, 4, "a")):
        path = folder / name
        with open(path, "w", newline="", encoding="utf-8") as f:
            f.write("session_id,event_timestamp,event_type,userid,product_id,category_id\r\n")
            for i in range(n):
                f.write(
                    f"{prefix}{i:07d}-0000-4000-8000-000000000000,{month:02d}/{1 + i % 28:02d}/2019 "
                    f"{1 + i % 12:02d}:{i % 60:02d} PM,view,{customers[i % 50]},{products[i % 50]},papelaria\r\n"
                )
        paths.append(path)
    return paths[0], paths[1]


def fact_rows_per_file(settings) -> list[tuple]:
    return warehouse_rows(
        settings,
        "SELECT source_file, count(*) FROM marts.fact_funnel_events WHERE source_file LIKE '2019%' "
        "GROUP BY 1 ORDER BY 1",
    )


@pytest.mark.slow
def test_funnel_late_conversion_still_reaches_the_fact(settings, olist_csv, tmp_path):
    s = settings.with_(funnel_block_bytes=64 * 1024)  # the large file converts in several blocks
    fill_source(s, olist_csv)
    extract_and_load(s)
    pipeline.build(s, quiet(), check_freshness=False)
    big, small = _late_files(tmp_path / "files", olist_csv, big_rows=20_000)
    pipeline.funnel_land(s, quiet(), [big, small])

    overlapped: list[int] = []

    def meanwhile(name: str, rows: int, _bytes: int) -> None:
        """While the large file converts (its converted_at stamped already): the small file
        converts, is loaded and a scheduled build runs."""
        if not overlapped:
            overlapped.append(rows)
            pipeline.funnel_convert(s, quiet(), file=small.name)
            pipeline.load(s, quiet())
            pipeline.build(s, quiet(), check_freshness=False)

    store = ObjectStore(s.store_url, s)
    from loaders.funnel import convert_file

    report = convert_file(s, store, big.name, progress=meanwhile)
    assert overlapped and overlapped[0] < report.rows_read == 20_000  # it was mid-file
    assert fact_rows_per_file(s) == [("2019_04_funnel.csv", 1000)]  # the build in between
    big_marker = store.read_json("state/funnel/2019_03_funnel.json")
    small_marker = store.read_json("state/funnel/2019_04_funnel.json")
    assert big_marker["converted_at"] < small_marker["converted_at"] < big_marker["published_at"]

    pipeline.load(s, quiet())
    pipeline.build(s, quiet(), check_freshness=False)  # the next scheduled build
    expected = [("2019_03_funnel.csv", 20_000), ("2019_04_funnel.csv", 1000)]
    assert fact_rows_per_file(s) == expected
    lake = warehouse_rows(
        s,
        "SELECT source_file, count(*) FROM staging.stg_funnel__events WHERE source_file LIKE '2019%' "
        "GROUP BY 1 ORDER BY 1",
    )
    assert lake == expected


@pytest.mark.slow
def test_a_bad_funnel_file_does_not_block_the_run(settings, olist_csv, tmp_path):
    s = settings
    fill_source(s, olist_csv)
    extract_and_load(s)
    pipeline.build(s, quiet(), check_freshness=False)
    orders_before = warehouse_rows(s, "SELECT count(DISTINCT order_id) FROM raw.orders")[0][0]

    good = tmp_path / "2017_funnel_day340.csv"
    good.write_bytes((CASES / "2017_funnel_day340.csv").read_bytes())
    pipeline.funnel_land(s, quiet(), [CASES / "2018_funnel_0903.csv", good])
    simulate(s, quiet(), hours=1, orders_per_hour=10)

    lines: list[str] = []
    rep = quiet()
    rep.echo = lines.append
    with pytest.raises(RunFailed, match=r"1 unit\(s\) failed: funnel_convert 2018_funnel_0903.csv") as raised:
        pipeline.run(s, rep)
    assert isinstance(raised.value, USER_ERRORS)  # the CLI prints it as one line, exit status 1
    assert any(
        "2018_funnel_0903.csv" in line and "10 of 50 rows rejected" in line and "10 bad_timestamp" in line
        for line in lines
    )
    summary = lines[lines.index("\n== run finished with 1 failure(s)") + 1 :]
    assert summary[0].startswith("  funnel_convert 2018_funnel_0903.csv: failed: 2018_funnel_0903.csv: 10 of 50")

    # the Olist stages ran: the hour's 10 new orders are in raw and in the fact
    assert warehouse_rows(s, "SELECT count(DISTINCT order_id) FROM raw.orders")[0][0] == orders_before + 10
    assert warehouse_rows(s, "SELECT count(*) FROM marts.fact_orders")[0][0] == orders_before + 10
    # the good funnel file next to the bad one converted; the bad one left nothing in the lake
    store = ObjectStore(s.store_url, s)
    assert len(lake_events(store, "2017_funnel_day340")) == 40 and lake_events(store, "2018_funnel_0903") == []
    statuses = {(o.stage, o.unit): o.status for o in rep.run.outcomes}
    assert statuses[("funnel_convert", "2018_funnel_0903.csv")] == "failed"
    assert statuses[("funnel_convert", "2017_funnel_day340.csv")] == "succeeded"
    assert statuses[("extract", "orders")] == "succeeded"

    # the next hour: the bad file is named again, the orders still flow
    simulate(s, quiet(), hours=1, orders_per_hour=10)
    with pytest.raises(RunFailed):
        pipeline.run(s, quiet())
    assert warehouse_rows(s, "SELECT count(*) FROM marts.fact_orders")[0][0] == orders_before + 20
    with pytest.raises(FunnelError, match="2018_funnel_0903.csv: 10 of 50 rows rejected"):
        pipeline.funnel_convert(s, quiet())  # `dwh funnel convert` alone still fails on it
