-- One row per customer_id (one per order, as in the source); customer_unique_id is the person.
with

customers as (
    select * from {{ ref('stg_olist__customers') }}
),

locations as (
    select * from {{ ref('int_zip_locations') }}
),

final as (
    select
        customers.customer_id,
        customers.customer_unique_id,
        customers.zip_code_prefix,
        customers.city,
        customers.state,
        cast(locations.latitude as double precision) as latitude,
        cast(locations.longitude as double precision) as longitude,
        locations.zip_code_prefix is not null as has_location
    from customers
    left join locations
        on customers.zip_code_prefix = locations.zip_code_prefix
)

select * from final
