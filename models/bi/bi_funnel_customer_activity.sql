-- Per customer: how often they view, add to cart, remove from cart and purchase, and who
-- views or carts without buying (the seed design's funnel dashboard).
with

events as (
    select * from {{ ref('fact_funnel_events') }}
),

customers as (
    select * from {{ ref('dim_customer') }}
),

activity as (
    select
        customer_id,
        sum(case when is_view then 1 else 0 end) as view_count,
        sum(case when is_add_to_cart then 1 else 0 end) as add_to_cart_count,
        sum(case when is_remove_from_cart then 1 else 0 end) as remove_from_cart_count,
        sum(case when is_purchase then 1 else 0 end) as purchase_count,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at
    from events
    group by customer_id
),

final as (
    select
        activity.customer_id,
        customers.customer_unique_id,
        customers.state as customer_state,
        activity.view_count,
        activity.add_to_cart_count,
        activity.remove_from_cart_count,
        activity.purchase_count,
        activity.view_count > 0 and activity.purchase_count = 0 as is_viewer_without_purchase,
        activity.add_to_cart_count > 0 and activity.purchase_count = 0 as is_carter_without_purchase,
        customers.customer_id is not null as is_known_customer,
        activity.first_event_at,
        activity.last_event_at
    from activity
    left join customers on activity.customer_id = customers.customer_id
)

select * from final
