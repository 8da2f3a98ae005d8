{#-
    The `indexes` config of an incremental model (dbt-postgres; BENCHMARKS.md, bench/hourly):
    on PostgreSQL, a B-tree on the model's unique key (the delete of dbt's delete+insert, the
    delete hooks of macros/deletes.sql and the lookups of the models downstream find the run's
    keys through it) and one on the load-time column its incremental selection reads
    (`incremental_since`'s max() and `> since` range: an index read instead of a scan of the
    whole model). Not unique: a duplicate key stays a failing `unique` test with its rows in
    schema audit, not an insert error.

    Everywhere else an empty list: DuckDB (dbt-duckdb would create ART indexes, which only slow
    its bulk delete+insert down) and Redshift (no indexes: dbt-redshift falls back to
    dbt-postgres's CREATE INDEX, which Redshift refuses; sort keys play that part there).
    dbt creates the indexes when it creates the table (first build, --full-refresh), not on
    incremental runs: an existing PostgreSQL warehouse gets them with
    `dbt run-operation create_model_indexes`.

        {{ config(unique_key='order_id', indexes=pg_indexes('order_id', 'source_loaded_at')) }}
-#}
{% macro pg_indexes(unique_key, since_column='loaded_at') -%}
    {%- if target is not defined or target.type != 'postgres' -%}  {#- SQLFluff's jinja has no target -#}
        {{ return([]) }}
    {%- endif -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {{ return([{'columns': keys}, {'columns': [since_column]}]) }}
{%- endmacro %}
