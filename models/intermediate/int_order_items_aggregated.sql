-- Items per order: how many, their value and freight, how many sellers.
-- Incremental per order: orders with a row loaded (or deleted) since the newest loaded_at here are
-- redone; an order whose rows are all deleted is removed (macros/deletes.sql).
{{
    config(
        unique_key='order_id',
        indexes=pg_indexes('order_id'),
        pre_hook="{{ drop_vanished('order_id', [['order_items', 'order_id', 'stg_olist__order_items', 'order_id']]) }}",
    )
}}

with

items as (
    select * from {{ ref('stg_olist__order_items') }}
    {% if is_incremental() %}
        where order_id in (
                {{ newly_loaded('stg_olist__order_items', 'order_id') }}
                union
                {{ deleted_keys('order_items', 'order_id', 'loaded_at') }}
            )
    {% endif %}
),

aggregated as (
    select
        order_id,
        count(*) as item_count,
        count(distinct seller_id) as seller_count,
        cast(sum(price) as numeric(14, 2)) as item_value,
        cast(sum(freight_value) as numeric(14, 2)) as freight_value,
        max(loaded_at) as loaded_at
    from items
    group by order_id
)

select * from aggregated
