-- Per seller: orders, items, revenue, review score and late deliveries.
with

items as (
    select * from {{ ref('fact_order_items') }}
),

orders as (
    select * from {{ ref('fact_orders') }}
),

sellers as (
    select * from {{ ref('dim_seller') }}
),

seller_orders as (
    select distinct
        items.seller_id,
        items.order_id
    from items
),

order_outcomes as (
    select
        seller_orders.seller_id,
        count(*) as order_count,
        avg(cast(orders.review_score as double precision)) as average_review_score,
        sum(case when orders.is_late_delivery then 1 else 0 end) as late_order_count
    from seller_orders
    inner join orders on seller_orders.order_id = orders.order_id
    group by seller_orders.seller_id
),

item_totals as (
    select
        seller_id,
        count(*) as items_sold,
        sum(price) as revenue
    from items
    group by seller_id
),

final as (
    select
        sellers.seller_id,
        sellers.state as seller_state,
        sellers.city as seller_city,
        coalesce(order_outcomes.order_count, 0) as order_count,
        coalesce(item_totals.items_sold, 0) as items_sold,
        coalesce(item_totals.revenue, 0) as revenue,
        order_outcomes.average_review_score,
        coalesce(order_outcomes.late_order_count, 0) as late_order_count
    from sellers
    left join order_outcomes on sellers.seller_id = order_outcomes.seller_id
    left join item_totals on sellers.seller_id = item_totals.seller_id
)

select * from final
