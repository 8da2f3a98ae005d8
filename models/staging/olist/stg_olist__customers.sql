-- Incremental on the declared primary key, as named here; a key deleted in the source (its latest
-- version a tombstone) is removed before each incremental run inserts (pre-hook, macros/deletes.sql).
{{
    config(
        unique_key='customer_id',
        indexes=pg_indexes('customer_id'),
        pre_hook="{{ drop_deleted_keys('customers') }}",
    )
}}

with

source as (
    select * from {{ latest_version('olist', 'customers') }}
),

renamed as (
    select
        customer_id,
        customer_unique_id,
        customer_zip_code_prefix as zip_code_prefix,
        customer_city as city,
        customer_state as state,
        updated_at as source_updated_at,
        _batch_id as batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
