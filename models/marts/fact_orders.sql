{#-
    Incremental: each run deletes and re-inserts every order that has a row (order, item,
    payment or review) loaded since the latest source_loaded_at already here, minus a lookback
    (macros/changed_orders.sql). The filter relies on staging's loaded_at, which the loader
    stamps on every new row version, and on source_loaded_at being the newest loaded_at of
    the order's rows. A deleted order (its latest version a tombstone) is removed by the
    pre-hook; a deleted item, payment or review rebuilds its order (macros/deletes.sql).
    A --full-refresh builds the same rows from all of raw.
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
        pre_hook="{{ drop_vanished('order_id', [['orders', 'order_id', 'stg_olist__orders', 'order_id']], 'source_loaded_at') }}",
    )
}}

-- depends_on: {{ ref('stg_olist__order_items') }}
-- depends_on: {{ ref('stg_olist__order_payments') }}
-- depends_on: {{ ref('stg_olist__order_reviews') }}

with

orders as (
    select * from {{ ref('stg_olist__orders') }}
    {% if is_incremental() %}
        where order_id in ({{ changed_orders() }})
    {% endif %}
),

items as (
    select * from {{ ref('int_order_items_aggregated') }}
),

payments as (
    select * from {{ ref('int_order_payments_aggregated') }}
),

reviews as (
    select * from {{ ref('int_order_reviews_latest') }}
),

joined as (
    select
        orders.order_id,
        orders.customer_id,
        orders.order_status,
        payments.main_payment_type,
        coalesce(items.item_count, 0) as item_count,
        coalesce(items.seller_count, 0) as seller_count,
        coalesce(items.item_value, 0) as item_value,
        coalesce(items.freight_value, 0) as freight_value,
        coalesce(payments.payment_count, 0) as payment_count,
        coalesce(payments.payment_value, 0) as payment_value,
        payments.payment_installments,
        reviews.review_score,
        orders.order_status = 'delivered' as is_delivered,
        coalesce(payments.has_voucher, false) as has_voucher,
        orders.estimated_delivery_date,
        orders.purchased_at,
        orders.approved_at,
        orders.delivered_to_carrier_at,
        orders.delivered_to_customer_at,
        greatest(orders.loaded_at, items.loaded_at, payments.loaded_at, reviews.loaded_at) as source_loaded_at
    from orders
    left join items on orders.order_id = items.order_id
    left join payments on orders.order_id = payments.order_id
    left join reviews on orders.order_id = reviews.order_id
),

final as (
    select
        cast(order_id as varchar) as order_id,
        cast(customer_id as varchar) as customer_id,
        cast(order_status as varchar) as order_status,
        cast(main_payment_type as varchar) as main_payment_type,
        cast(item_count as integer) as item_count,
        cast(seller_count as integer) as seller_count,
        cast(item_value as numeric(14, 2)) as item_value,
        cast(freight_value as numeric(14, 2)) as freight_value,
        cast(item_value + freight_value as numeric(14, 2)) as order_value,
        cast(payment_count as integer) as payment_count,
        cast(payment_value as numeric(14, 2)) as payment_value,
        cast(payment_installments as integer) as payment_installments,
        cast(review_score as integer) as review_score,
        cast({{ dbt.datediff('purchased_at', 'delivered_to_customer_at', 'day') }} as integer) as delivery_days,
        is_delivered,
        coalesce(cast(delivered_to_customer_at as date) > estimated_delivery_date, false) as is_late_delivery,
        has_voucher,
        cast(purchased_at as date) as purchase_date,
        estimated_delivery_date,
        cast(purchased_at as timestamp) as purchased_at,
        cast(approved_at as timestamp) as approved_at,
        cast(delivered_to_carrier_at as timestamp) as delivered_to_carrier_at,
        cast(delivered_to_customer_at as timestamp) as delivered_to_customer_at,
        cast(source_loaded_at as timestamp) as source_loaded_at
    from joined
)

select * from final
