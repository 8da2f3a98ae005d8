{#-
    Incremental like fact_orders: every order with a newly loaded row is deleted and re-inserted
    whole, so an item that changed or was added is replaced together with its siblings. An
    order deleted, or whose items are all deleted, is removed by the pre-hook (macros/deletes.sql).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete_insert_pruned',
        unique_key='order_id',
        prune_column='purchased_at',
        on_schema_change='fail',
        dist='order_id',
        sort=['purchased_at'],
        indexes=pg_indexes('order_id', 'source_loaded_at'),
        pre_hook="{{ drop_vanished('order_id', [['orders', 'order_id', 'fact_orders', 'order_id'], ['order_items', 'order_id', 'stg_olist__order_items', 'order_id']], 'source_loaded_at') }}",
    )
}}

-- depends_on: {{ ref('stg_olist__orders') }}
-- depends_on: {{ ref('stg_olist__order_payments') }}
-- depends_on: {{ ref('stg_olist__order_reviews') }}

with

items as (
    select * from {{ ref('stg_olist__order_items') }}
    {% if is_incremental() %}
        where order_id in ({{ changed_orders() }})
    {% endif %}
),

-- The order's customer, purchase time and load time, as fact_orders holds them (built just
-- before in the same run); an item whose order is unknown has no row here.
orders as (
    select * from {{ ref('fact_orders') }}
    {% if is_incremental() %}
        where order_id in (select order_id from items)
    {% endif %}
),

joined as (
    select
        items.order_id,
        items.order_item_id,
        items.product_id,
        items.seller_id,
        orders.customer_id,
        items.price,
        items.freight_value,
        items.shipping_limit_at,
        orders.purchased_at,
        orders.source_loaded_at
    from items
    inner join orders on items.order_id = orders.order_id
),

final as (
    select
        cast(order_id as varchar) as order_id,
        cast(order_item_id as integer) as order_item_id,
        cast(product_id as varchar) as product_id,
        cast(seller_id as varchar) as seller_id,
        cast(customer_id as varchar) as customer_id,
        cast(price as numeric(14, 2)) as price,
        cast(freight_value as numeric(14, 2)) as freight_value,
        cast(price + freight_value as numeric(14, 2)) as item_total,
        cast(purchased_at as date) as purchase_date,
        cast(purchased_at as timestamp) as purchased_at,
        cast(shipping_limit_at as timestamp) as shipping_limit_at,
        cast(source_loaded_at as timestamp) as source_loaded_at
    from joined
)

select * from final
