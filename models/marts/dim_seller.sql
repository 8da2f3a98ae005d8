-- Incremental: a run rebuilds the sellers loaded since the newest source_loaded_at here, and
-- those whose zip prefix got a new location.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='seller_id',
        indexes=pg_indexes('seller_id', 'source_loaded_at'),
        on_schema_change='fail',
    )
}}

with

sellers as (
    select * from {{ ref('stg_olist__sellers') }}
    {% if is_incremental() %}
        where
            loaded_at > {{ incremental_since('source_loaded_at') }}
            or zip_code_prefix in (
                select zip_code_prefix from {{ ref('int_zip_locations') }}
                where loaded_at > {{ incremental_since('source_loaded_at') }}
            )
    {% endif %}
),

locations as (
    select * from {{ ref('int_zip_locations') }}
),

final as (
    select
        sellers.seller_id,
        sellers.zip_code_prefix,
        sellers.city,
        sellers.state,
        cast(locations.latitude as double precision) as latitude,
        cast(locations.longitude as double precision) as longitude,
        locations.zip_code_prefix is not null as has_location,
        cast(greatest(sellers.loaded_at, locations.loaded_at) as timestamp) as source_loaded_at
    from sellers
    left join locations
        on sellers.zip_code_prefix = locations.zip_code_prefix
)

select * from final
