"""The Spectrum DDL the dbt macros send to Redshift, rendered by dbt for the redshift target and
parsed with SQLFluff's redshift dialect (Redshift itself cannot run here)."""

from __future__ import annotations

import pytest
import sqlfluff

from loaders.build.dbt_runner import compile_inline

ROLE = "arn:aws:iam::123456789012:role/redshift-spectrum"
LOCATION = "s3://olist-lake/prod/lake/funnel_events/"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from loaders.config import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("spectrum"), warehouse="redshift")
    partitions = [[2016 + i // 12, 1 + i % 12] for i in range(150)]
    sql = compile_inline(
        settings,
        (
            "{{ spectrum_schema_sql('olist_lake', '" + ROLE + "') }};\n"
            "{{ spectrum_table_sql('" + LOCATION + "') }};\n"
            "{{ spectrum_partitions_sql('" + LOCATION + "', " + str(partitions) + ") | join(';\\n') }}"
        ),
    )
    return [s.strip() for s in sql.split(";") if s.strip()]


def test_statements_parse_as_redshift(rendered):
    schema, table, *alters = rendered
    for statement in (schema, table):
        sqlfluff.parse(statement, dialect="redshift")  # raises APIParsingError if unparsable
    # SQLFluff's redshift dialect has no grammar for ALTER TABLE ... ADD PARTITION (AWS's own
    # documented example fails too). Spectrum takes the Hive/Athena form of the statement, which
    # the athena dialect parses; the redshift dialect still parses everything before ADD.
    for statement in alters:
        sqlfluff.parse(statement, dialect="athena")
    with pytest.raises(sqlfluff.api.APIParsingError):
        sqlfluff.parse(alters[0].replace("add if not exists", "add if not exists if"), dialect="athena")


def test_schema_table_and_partitions(rendered):
    schema, table, *alters = rendered
    assert schema.startswith('create external schema if not exists "spectrum"')
    assert "database 'olist_lake'" in schema and f"iam_role '{ROLE}'" in schema
    assert "partitioned by (year integer, month integer)" in table and f"location '{LOCATION}'" in table
    assert len(alters) == 2  # 150 partitions: at most 100 per ALTER TABLE
    assert alters[0].count("partition (") == 100 and alters[1].count("partition (") == 50
    assert f"partition (year=2016, month=10) location '{LOCATION}year=2016/month=10/'" in alters[0]
    assert all("add if not exists" in a for a in alters)
