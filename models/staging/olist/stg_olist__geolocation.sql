-- Incremental on the declared primary key, as named here; a key deleted in the source (its latest
-- version a tombstone) is removed before each incremental run inserts (pre-hook, macros/deletes.sql).
{{
    config(
        unique_key='geolocation_id',
        indexes=pg_indexes('geolocation_id'),
        pre_hook="{{ drop_deleted_keys('geolocation') }}",
    )
}}

-- Several rows per zip prefix and many exact duplicates: never join this on the zip alone.
with

source as (
    select * from {{ latest_version('olist', 'geolocation') }}
),

renamed as (
    select
        geolocation_id,
        geolocation_zip_code_prefix as zip_code_prefix,
        geolocation_city as city,
        geolocation_state as state,
        geolocation_lat as latitude,
        geolocation_lng as longitude,
        updated_at as source_updated_at,
        _batch_id as batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
