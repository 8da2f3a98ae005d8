{#-
    The order_ids an incremental fact must rebuild: every order with a row (order, item,
    payment or review) loaded or deleted (a tombstone loaded, macros/deletes.sql) since the
    fact's newest `source_loaded_at`, minus the lookback (macros/incremental_since.sql).
-#}
{% macro changed_orders() -%}
    {%- for model in ['stg_olist__orders', 'stg_olist__order_items', 'stg_olist__order_payments', 'stg_olist__order_reviews'] %}
    select order_id from {{ ref(model) }} where loaded_at > {{ incremental_since('source_loaded_at') }}
    union
    {%- endfor %}
    {%- for table in ['orders', 'order_items', 'order_payments', 'order_reviews'] %}
    {{ deleted_keys(table, 'order_id', 'source_loaded_at') }}
    {% if not loop.last %}union{% endif %}
    {%- endfor %}
{%- endmacro %}
