-- One row per customer_id (one per order, as in the source); customer_unique_id is the person.
-- Incremental: a run rebuilds the customers loaded since the newest source_loaded_at here, and
-- those whose zip prefix got a new location.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='customer_id',
        indexes=pg_indexes('customer_id', 'source_loaded_at'),
        on_schema_change='fail',
    )
}}

with

customers as (
    select * from {{ ref('stg_olist__customers') }}
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
        customers.customer_id,
        customers.customer_unique_id,
        customers.zip_code_prefix,
        customers.city,
        customers.state,
        cast(locations.latitude as double precision) as latitude,
        cast(locations.longitude as double precision) as longitude,
        locations.zip_code_prefix is not null as has_location,
        cast(greatest(customers.loaded_at, locations.loaded_at) as timestamp) as source_loaded_at
    from customers
    left join locations
        on customers.zip_code_prefix = locations.zip_code_prefix
)

select * from final
