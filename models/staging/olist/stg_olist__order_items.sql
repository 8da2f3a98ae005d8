-- Incremental on the declared primary key, as named here; a key deleted in the source (its latest
-- version a tombstone) is removed before each incremental run inserts (pre-hook, macros/deletes.sql).
{{
    config(
        unique_key=['order_id', 'order_item_id'],
        indexes=pg_indexes(['order_id', 'order_item_id']),
        pre_hook="{{ drop_deleted_keys('order_items') }}",
    )
}}

with

source as (
    select * from {{ latest_version('olist', 'order_items') }}
),

renamed as (
    select
        order_id,
        order_item_id,
        product_id,
        seller_id,
        price,
        freight_value,
        shipping_limit_date as shipping_limit_at,
        updated_at as source_updated_at,
        _batch_id as batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
