-- Incremental on the declared primary key, as named here; a key deleted in the source (its latest
-- version a tombstone) is removed before each incremental run inserts (pre-hook, macros/deletes.sql).
{{ config(unique_key='product_id', indexes=pg_indexes('product_id'), pre_hook="{{ drop_deleted_keys('products') }}") }}

with

source as (
    select * from {{ latest_version('olist', 'products') }}
),

renamed as (
    select
        product_id,
        product_category_name as category_name,
        -- the source spells these "lenght"; fixed here, once
        product_name_lenght as name_length,
        product_description_lenght as description_length,
        product_photos_qty as photo_count,
        product_weight_g as weight_g,
        product_length_cm as length_cm,
        product_height_cm as height_cm,
        product_width_cm as width_cm,
        updated_at as source_updated_at,
        _batch_id as batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
