{#-
    incremental_strategy='delete_insert_pruned': dbt's delete+insert on the unique key, plus a
    predicate on the model's `prune_column` (an immutable column the table is sorted on, e.g.
    the purchase time), so Redshift's zone maps skip every block older than the oldest changed
    row instead of scanning the whole fact for the delete. A row whose prune column changed would
    survive the delete; the facts' unique tests fail loudly if that ever happens.
-#}
{% macro get_incremental_delete_insert_pruned_sql(arg_dict) -%}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set source = arg_dict["temp_relation"] -%}
    {%- set unique_key = arg_dict["unique_key"] -%}
    {%- set prune_column = config.require("prune_column") -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    delete from {{ target }}
    where {{ unique_key }} in (select {{ unique_key }} from {{ source }})
        and {{ prune_column }} >= (select min({{ prune_column }}) from {{ source }});

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
{%- endmacro %}
