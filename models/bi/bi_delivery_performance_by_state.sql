-- Delivery time and lateness per customer state, over delivered orders.
with

orders as (
    select * from {{ ref('fact_orders') }}
),

customers as (
    select * from {{ ref('dim_customer') }}
),

final as (
    select
        customers.state as customer_state,
        count(*) as delivered_order_count,
        avg(cast(orders.delivery_days as double precision)) as average_delivery_days,
        sum(case when orders.is_late_delivery then 1 else 0 end) as late_order_count,
        avg(case when orders.is_late_delivery then 1.0 else 0.0 end) as late_order_share
    from orders
    inner join customers on orders.customer_id = customers.customer_id
    where orders.is_delivered and orders.delivered_to_customer_at is not null
    group by customers.state
)

select * from final
