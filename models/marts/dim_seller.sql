with

sellers as (
    select * from {{ ref('stg_olist__sellers') }}
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
        locations.zip_code_prefix is not null as has_location
    from sellers
    left join locations
        on sellers.zip_code_prefix = locations.zip_code_prefix
)

select * from final
