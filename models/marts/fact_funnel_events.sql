{#-
    Incremental by event month: a run rebuilds every month that has events from a file
    converted since the newest converted_at already here minus the lookback (var
    lookback_hours, as the Olist models: macros/incremental_since.sql), plus the months those
    files held before (a re-converted file may have moved). delete+insert on
    event_month_number replaces whole months, so re-converting a file never duplicates its
    events. converted_at is when a file's conversion started, and a file is published when it
    ends: the lookback lets a conversion that ends after another file's build still reach the
    fact (tests/test_funnel_cases.py, late conversion), as long as it takes less than
    lookback_hours.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_month_number',
        on_schema_change='fail',
        dist='customer_id',
        sort=['event_at'],
    )
}}

with

events as (
    select * from {{ ref('stg_funnel__events') }}
    {% if is_incremental() %}
        where event_month_number in (
                select event_month_number from {{ ref('stg_funnel__events') }}
                where converted_at > {{ incremental_since('converted_at') }}
                union
                select event_month_number from {{ this }}
                where source_file in (
                        select source_file from {{ ref('stg_funnel__events') }}
                        where converted_at > {{ incremental_since('converted_at') }}
                    )
            )
    {% endif %}
),

products as (
    select * from {{ ref('dim_product') }}
),

final as (
    select
        cast(events.session_id as varchar) as session_id,
        cast(events.customer_id as varchar) as customer_id,
        cast(events.product_id as varchar) as product_id,
        cast(events.event_type as varchar) as event_type,
        cast(events.category_name as varchar) as event_category_name,
        cast(coalesce(products.category_name_english, 'unknown') as varchar) as product_category_name_english,
        cast(events.source_file as varchar) as source_file,
        cast(events.event_month_number as integer) as event_month_number,
        events.event_type = 'view' as is_view,
        events.event_type = 'add_to_cart' as is_add_to_cart,
        events.event_type = 'remove_from_cart' as is_remove_from_cart,
        events.event_type = 'purchase' as is_purchase,
        cast(events.event_date as date) as event_date,
        cast(events.event_at as timestamp) as event_at,
        cast(events.converted_at as timestamp) as converted_at
    from events
    left join products on events.product_id = products.product_id
)

select * from final
