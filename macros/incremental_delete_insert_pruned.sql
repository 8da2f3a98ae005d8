{#-
    incremental_strategy='delete_insert_pruned': dbt's delete+insert on the unique key, plus a
    bound on the model's `prune_column` (the column the table is sorted on, e.g. the purchase
    time): the oldest value among the new rows AND among the rows the target holds for the same
    keys is read first and written into the delete as a constant, so Redshift's zone maps (and
    DuckDB's) skip every block older than the oldest changed row instead of scanning the whole
    fact. Reading the target's old values too makes the delete cover a row whose prune column
    moved, later or earlier (a corrected purchase time): the old row is always deleted.
-#}
{% macro get_incremental_delete_insert_pruned_sql(arg_dict) -%}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set source = arg_dict["temp_relation"] -%}
    {%- set unique_key = arg_dict["unique_key"] -%}
    {%- set prune_column = config.require("prune_column") -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    {%- set oldest = none -%}
    {%- if execute -%}
        {%- set oldest = run_query(
            "select cast(min(" ~ prune_column ~ ") as varchar) from ("
            ~ " select " ~ prune_column ~ " from " ~ source
            ~ " union all select " ~ prune_column ~ " from " ~ target
            ~ " where " ~ unique_key ~ " in (select " ~ unique_key ~ " from " ~ source ~ ")"
            ~ ") as changed").columns[0].values()[0] -%}
    {%- endif -%}
    {%- if oldest is not none %}
    delete from {{ target }}
    where
        ({{ prune_column }} >= cast('{{ oldest }}' as timestamp) or {{ prune_column }} is null)
        and {{ unique_key }} in (select {{ unique_key }} from {{ source }});
    {%- endif %}

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
{%- endmacro %}
