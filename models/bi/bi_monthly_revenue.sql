-- Orders and revenue per purchase month (canceled and unavailable orders excluded from revenue).
with

orders as (
    select
        *,
        order_status not in ('canceled', 'unavailable') as is_billable
    from {{ ref('fact_orders') }}
),

dates as (
    select * from {{ ref('dim_date') }}
),

final as (
    select
        dates.month_start_date,
        count(*) as order_count,
        sum(case when orders.is_billable then 1 else 0 end) as billable_order_count,
        sum(case when orders.is_billable then orders.order_value else 0 end) as revenue,
        sum(case when orders.is_billable then orders.payment_value else 0 end) as payments_received
    from orders
    inner join dates on orders.purchase_date = dates.date_day
    group by dates.month_start_date
)

select * from final
