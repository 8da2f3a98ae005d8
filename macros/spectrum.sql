{#-
    Redshift Spectrum over the funnel lake.

    With the Glue Data Catalog (the converter registers every partition), one statement is
    enough: an external schema over the Glue database. For users without Glue partitions, the
    external table and its partitions can be created from Redshift instead. Each macro returns
    its SQL; `dbt run-operation setup_spectrum` runs them on the redshift target:

        dbt run-operation setup_spectrum --target redshift \
            --args '{glue_database: olist_lake, location: "s3://bucket/prefix/lake/funnel_events/"}'
        dbt run-operation setup_spectrum --target redshift \
            --args '{glue_database: olist_lake, location: "s3://...", partitions: [[2016, 10], [2016, 11]]}'
-#}

{% macro spectrum_schema_sql(glue_database, iam_role, schema=none) -%}
create external schema if not exists {{ adapter.quote(schema or var('spectrum_schema', 'spectrum')) }}
from data catalog
database '{{ glue_database }}'
iam_role '{{ iam_role }}'
create external database if not exists
{%- endmacro %}


{#- The external table's columns render from the funnel source's declaration
    (models/staging/funnel/_funnel__sources.yml): the Parquet columns, then the partitions. -#}
{% macro spectrum_table_sql(location, schema=none, table='funnel_events') -%}
    {%- set columns = source_columns('funnel', 'funnel_events') -%}
    {%- set stored = [] -%}
    {%- set partitions = [] -%}
    {%- for column in columns -%}
        {%- set line = column.name ~ ' ' ~ redshift_type(column.data_type) -%}
        {%- do (partitions if column.meta.get('origin') == 'partition' else stored).append(line) -%}
    {%- endfor -%}
create external table {{ adapter.quote(schema or var('spectrum_schema', 'spectrum')) }}.{{ adapter.quote(table) }} (
    {{ stored | join(',\n    ') }}
)
partitioned by ({{ partitions | join(', ') }})
stored as parquet
location '{{ location }}'
{%- endmacro %}


{#- ALTER TABLE ... ADD takes at most 100 partitions per statement: one statement per 100. -#}
{% macro spectrum_partitions_sql(location, partitions, schema=none, table='funnel_events') -%}
    {%- set statements = [] -%}
    {%- set base = location.rstrip('/') -%}
    {%- for start in range(0, partitions | length, 100) -%}
        {%- set clauses = [] -%}
        {%- for year, month in partitions[start:start + 100] -%}
            {%- do clauses.append(
                "partition (year=" ~ (year | int) ~ ", month=" ~ (month | int) ~ ") location '"
                ~ base ~ "/year=" ~ (year | int) ~ "/month=" ~ (month | int) ~ "/'") -%}
        {%- endfor -%}
        {%- do statements.append(
            "alter table " ~ adapter.quote(schema or var('spectrum_schema', 'spectrum')) ~ "." ~ adapter.quote(table)
            ~ " add if not exists\n" ~ (clauses | join("\n"))) -%}
    {%- endfor -%}
    {{ return(statements) }}
{%- endmacro %}


{% macro setup_spectrum(glue_database, location, iam_role=none, partitions=none, create_table=false) -%}
    {%- set role = iam_role or env_var('DWH_REDSHIFT_IAM_ROLE', '') -%}
    {%- if not role -%}
        {{ exceptions.raise_compiler_error("setup_spectrum: pass iam_role or set DWH_REDSHIFT_IAM_ROLE") }}
    {%- endif -%}
    {%- do run_query(spectrum_schema_sql(glue_database, role)) -%}
    {%- if create_table -%}
        {%- do run_query(spectrum_table_sql(location)) -%}
    {%- endif -%}
    {%- for statement in spectrum_partitions_sql(location, partitions or []) -%}
        {%- do run_query(statement) -%}
    {%- endfor -%}
    {{ log("Spectrum schema ready over Glue database " ~ glue_database, info=true) }}
{%- endmacro %}
