{#-
    The order_ids an incremental fact must rebuild: every order with a row (order, item,
    payment or review) loaded since the fact's latest `source_loaded_at`, minus a lookback
    (var fact_lookback_hours, default 3) for batches that arrive late or load while dbt runs.
    Rebuilding an order is idempotent (delete+insert on order_id), so the lookback only costs time.
    An empty fact rebuilds every order.
-#}
{% macro changed_orders(lookback_hours=none) -%}
    {%- set hours = (lookback_hours if lookback_hours is not none else var('fact_lookback_hours', 3)) | int -%}
    {%- set since -%}
        (
            select {{ dbt.dateadd('hour', -1 * hours, "coalesce(max(source_loaded_at), cast('1900-01-01' as timestamp))") }}
            from {{ this }}
        )
    {%- endset -%}
    {%- for model in ['stg_olist__orders', 'stg_olist__order_items', 'stg_olist__order_payments', 'stg_olist__order_reviews'] %}
    select order_id from {{ ref(model) }} where loaded_at > {{ since }}
    {% if not loop.last %}union{% endif %}
    {%- endfor %}
{%- endmacro %}
