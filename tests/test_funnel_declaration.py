"""The funnel events are declared once (models/staging/funnel/_funnel__sources.yml) and every
consumer renders the same columns, types and lengths from it: the converter's header and Parquet
schema, the Glue table, the DuckDB and PostgreSQL raw.funnel_events table and the Spectrum DDL.
The expectations are read from the YAML here, with yaml.safe_load, not from the loaders."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from loaders.config import PROJECT_DIR
from loaders.declarations import funnel_declaration
from loaders.declarations.types import LogicalType
from loaders.funnel import GlueCatalog, convert_file, land_files
from loaders.store import ObjectStore
from loaders.warehouses import open_warehouse

YAML = PROJECT_DIR / "models/staging/funnel/_funnel__sources.yml"


def declared() -> list[dict]:
    """The YAML's funnel_events columns: name, data_type, meta."""
    doc = yaml.safe_load(YAML.read_text(encoding="utf-8"))
    (source,) = [s for s in doc["sources"] if s["name"] == "funnel"]
    (table,) = [t for t in source["tables"] if t["name"] == "funnel_events"]
    return table["columns"]


def parquet_columns() -> list[dict]:
    return [c for c in declared() if c["meta"]["origin"] != "partition"]


def length(data_type: str) -> int | None:
    match = re.fullmatch(r"(?:var)?char\((\d+)\)", data_type)
    return int(match[1]) if match else None


def write_funnel(path: Path, rows: list[list[str]]) -> Path:
    header = [c["name"] for c in declared() if c["meta"]["origin"] == "file"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def event(n: int, **values: str) -> list[str]:
    row = {
        "session_id": f"s{n:035d}",
        "event_timestamp": "03/15/2017 01:30 PM",
        "event_type": "view",
        "userid": "u" * 32,
        "product_id": "p" * 32,
        "category_id": "beleza_saude",
    }
    row.update(values)
    return list(row.values())


def test_the_declaration_is_the_yaml():
    columns = declared()
    assert [c["name"] for c in columns] == [c.name for c in funnel_declaration(PROJECT_DIR).columns]
    assert [c["data_type"] for c in columns] == [
        str(c.type.kind) + (f"({c.type.length})" if c.type.length else "")
        for c in funnel_declaration(PROJECT_DIR).columns
    ]
    assert funnel_declaration(PROJECT_DIR).header == tuple(c["name"] for c in columns if c["meta"]["origin"] == "file")
    # every string column has a length: nothing reaches Spectrum or a warehouse unbounded
    assert all(length(c["data_type"]) for c in columns if c["data_type"] != "timestamp" and c["data_type"] != "integer")


def test_no_python_code_spells_the_funnel_columns():
    """The column list lives in the YAML only; Python code reads it (loaders/declarations/funnel.py)."""
    spelled = []
    for folder in ("loaders", "olist_demo", "bench"):
        for path in (PROJECT_DIR / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if re.search(r"""["']category_id["']""", text) and re.search(r"""["']userid["']""", text):
                spelled.append(str(path.relative_to(PROJECT_DIR)))
    # bench/funnel.py's DuckDB contender spells its read_csv columns in SQL, as a user of DuckDB would
    assert spelled == ["bench/funnel.py"]
    bench = (PROJECT_DIR / "bench/funnel.py").read_text(encoding="utf-8")
    assert "COLUMNS = funnel_declaration(PROJECT_DIR).header" in bench


def test_the_converter_writes_the_declared_schema(settings, tmp_path):
    store = ObjectStore(settings.store_url, settings)
    land_files(store, [write_funnel(tmp_path / "schema_funnel.csv", [event(1), event(2, category_id="")])])
    report = convert_file(settings, store, "schema_funnel.csv")
    (path,) = report.outputs
    schema = pq.read_schema(store.full(path))
    expected = {"timestamp": pa.timestamp("us")}
    assert [(f.name, f.type) for f in schema] == [
        (c["name"], expected.get(c["data_type"], pa.string())) for c in parquet_columns()
    ]


def test_a_value_longer_than_declared_is_a_reject_with_its_reason(settings, tmp_path):
    """Lengths count characters, not bytes: 128 two-byte characters fit a varchar(128)."""
    limits = {c["name"]: length(c["data_type"]) for c in declared()}
    assert limits["userid"] == 64 and limits["category_id"] == 128
    s = settings.with_(funnel_max_reject_ratio=1.0)
    store = ObjectStore(s.store_url, s)
    rows = [
        event(1),
        event(2, userid="u" * 65),  # line 3
        event(3, category_id="é" * 128),  # fits: 128 characters (256 bytes)
        event(4, category_id="c" * 129),  # line 5
        event(5, session_id="s" * 65, userid="u" * 65),  # line 6: the first column's reason
        event(6, userid="u" * 64, product_id="p" * 64),
    ]
    land_files(store, [write_funnel(tmp_path / "long_funnel.csv", rows)])
    report = convert_file(s, store, "long_funnel.csv")
    assert report.rejects == {"too_long_userid": 1, "too_long_category_id": 1, "too_long_session_id": 1}
    assert report.rejects_file is not None
    with open(store.full(report.rejects_file), newline="", encoding="utf-8") as handle:
        rejected = {(int(r["line"]), r["reason"]) for r in csv.DictReader(handle)}
    assert rejected == {(3, "too_long_userid"), (5, "too_long_category_id"), (6, "too_long_session_id")}
    (path,) = report.outputs
    kept = pq.read_table(store.full(path)).to_pylist()
    assert sorted(r["session_id"][-1] for r in kept) == ["1", "3", "6"]
    assert "é" * 128 in {r["category_id"] for r in kept}


def test_the_glue_table_has_the_declared_columns(settings, s3_endpoint, s3_bucket):
    s = settings.with_(
        store_url=f"s3://{s3_bucket}/olist",
        s3_endpoint_url=s3_endpoint,
        glue_endpoint_url=s3_endpoint,
        glue_database="olist_lake_declared",
    )
    GlueCatalog(s, ObjectStore(s.store_url, s)).ensure_table()
    glue = boto3.client("glue", endpoint_url=s3_endpoint, region_name="us-east-1")
    table = glue.get_table(DatabaseName="olist_lake_declared", Name="funnel_events")["Table"]
    hive = {"timestamp": "timestamp", "integer": "int"}
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        (c["name"], hive.get(c["data_type"], c["data_type"])) for c in parquet_columns()
    ]
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [
        (c["name"], "int") for c in declared() if c["meta"]["origin"] == "partition"
    ]


def _table_columns(wh, schema: str) -> list[tuple]:
    return [
        tuple(r)
        for r in wh.execute(
            "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns "
            f"WHERE table_schema = '{schema}' AND table_name = 'funnel_events' ORDER BY ordinal_position"
        )
    ]


def test_the_duckdb_table_has_the_declared_columns(settings):
    with open_warehouse(settings, ObjectStore(settings.store_url, settings)) as wh:
        wh.publish_funnel()  # an empty lake: the table the funnel models build on
        got = _table_columns(wh, settings.raw_schema)
    duck = {"timestamp": "TIMESTAMP", "integer": "INTEGER"}
    assert [(name, kind) for name, kind, _ in got] == [
        (c["name"], duck.get(c["data_type"], "VARCHAR")) for c in declared()
    ]


def test_the_postgres_table_has_the_declared_columns_and_lengths(pg_settings):
    with open_warehouse(pg_settings, ObjectStore(pg_settings.store_url, pg_settings)) as wh:
        wh.publish_funnel()
        got = _table_columns(wh, pg_settings.raw_schema)
    pg = {"timestamp": "timestamp without time zone", "integer": "integer"}
    assert got == [(c["name"], pg.get(c["data_type"], "character varying"), length(c["data_type"])) for c in declared()]


@pytest.mark.slow
def test_the_spectrum_ddl_has_the_declared_columns(tmp_path):
    from loaders.build.dbt_runner import compile_inline
    from loaders.config import Settings

    settings = Settings(data_dir=tmp_path, warehouse="redshift")
    kinds = ["char(32)", "varchar(64)", "text", "integer", "bigint", "decimal(10,2)", "double", "timestamp(6)"]
    macro_types = "|".join("{{ redshift_type('" + k + "') }}" for k in kinds)
    rendered = compile_inline(settings, macro_types + "\n{{ spectrum_table_sql('s3://b/lake/funnel_events/') }}")
    first, sql = rendered.split("\n", 1)
    # macros/logical_types.sql spells the same mapping as LogicalType.sql("redshift"), every kind
    assert first.split("|") == [LogicalType.parse(k).sql("redshift").lower() for k in kinds]
    body = sql[sql.index("(") + 1 : sql.index(")\npartitioned by")]
    stored = [line.strip().rstrip(",") for line in body.strip().splitlines()]
    assert stored == [
        f"{c['name']} {LogicalType.parse(c['data_type']).sql('redshift').lower()}" for c in parquet_columns()
    ]
    assert "varchar(256)" in stored[0]  # session_id varchar(64): four bytes per character
    partitions = re.search(r"partitioned by \((.*)\)", sql)
    assert partitions is not None and partitions[1] == "year integer, month integer"
