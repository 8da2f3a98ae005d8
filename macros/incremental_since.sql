{#-
    The load time an incremental run starts from: the newest `column` already in the model,
    minus var lookback_hours (default 3) for batches that commit while dbt runs or arrive
    late. Reprocessing those rows is idempotent, so the lookback only costs time. An empty
    model starts from the beginning.
-#}
{% macro incremental_since(column) -%}
    {%- set hours = var('lookback_hours', 3) | int -%}
    (
        select {{ dbt.dateadd('hour', -1 * hours, "coalesce(max(" ~ column ~ "), cast('1900-01-01' as timestamp))") }}
        from {{ this }}
    )
{%- endmacro %}


{#- The `key` values of `model` with a row loaded since this model's newest loaded_at (minus the
    lookback): what an incremental intermediate model redoes. -#}
{% macro newly_loaded(model, key) -%}
    select {{ key }} from {{ ref(model) }} where loaded_at > {{ incremental_since('loaded_at') }}
{%- endmacro %}
