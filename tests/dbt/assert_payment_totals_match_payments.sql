-- Every order's payment_value in fact_orders equals the sum of its payments in staging.
with

payments as (
    select
        order_id,
        sum(payment_value) as payment_value
    from {{ ref('stg_olist__order_payments') }}
    group by order_id
),

orders as (
    select * from {{ ref('fact_orders') }}
)

select
    orders.order_id,
    orders.payment_value as fact_payment_value,
    coalesce(payments.payment_value, 0) as staged_payment_value
from orders
left join payments on orders.order_id = payments.order_id
where orders.payment_value != coalesce(payments.payment_value, 0)
