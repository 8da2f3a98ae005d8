with

source as (
    select * from {{ source('funnel', 'funnel_events') }}
),

renamed as (
    select
        session_id,
        userid as customer_id,
        product_id,
        category_id as category_name,
        event_type,
        source_file,
        cast(cast(year as integer) * 100 + cast(month as integer) as integer) as event_month_number,
        cast(event_timestamp as date) as event_date,
        cast(event_timestamp as timestamp) as event_at,
        cast(converted_at as timestamp) as converted_at
    from source
)

select * from renamed
