-- Incremental on the declared primary key, as named here; a key deleted in the source (its latest
-- version a tombstone) is removed before each incremental run inserts (pre-hook, macros/deletes.sql).
{{
    config(
        unique_key='category_name',
        indexes=pg_indexes('category_name'),
        pre_hook="{{ drop_deleted_keys('product_category_name_translation', ['category_name']) }}",
    )
}}

with

source as (
    select * from {{ latest_version('olist', 'product_category_name_translation') }}
),

renamed as (
    select
        product_category_name as category_name,
        product_category_name_english as category_name_english,
        updated_at as source_updated_at,
        _batch_id as batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
