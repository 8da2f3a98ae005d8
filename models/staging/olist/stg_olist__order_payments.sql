-- Incremental on the declared primary key, as named here; a key deleted in the source (its latest
-- version a tombstone) is removed before each incremental run inserts (pre-hook, macros/deletes.sql).
{{
    config(
        unique_key=['order_id', 'payment_sequential'],
        indexes=pg_indexes(['order_id', 'payment_sequential']),
        pre_hook="{{ drop_deleted_keys('order_payments') }}",
    )
}}

with

source as (
    select * from {{ latest_version('olist', 'order_payments') }}
),

renamed as (
    select
        order_id,
        payment_sequential,
        payment_type,
        payment_installments,
        payment_value,
        updated_at as source_updated_at,
        _batch_id as batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
