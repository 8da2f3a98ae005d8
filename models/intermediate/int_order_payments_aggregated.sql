-- Payments per order: total paid, how many payments, the installments and the main means of payment.
-- Incremental per order: orders with a row loaded (or deleted) since the newest loaded_at here are
-- redone; an order whose rows are all deleted is removed (macros/deletes.sql).
{{
    config(
        unique_key='order_id',
        indexes=pg_indexes('order_id'),
        pre_hook="{{ drop_vanished('order_id', [['order_payments', 'order_id', 'stg_olist__order_payments', 'order_id']]) }}",
    )
}}

with

payments as (
    select * from {{ ref('stg_olist__order_payments') }}
    {% if is_incremental() %}
        where order_id in (
                {{ newly_loaded('stg_olist__order_payments', 'order_id') }}
                union
                {{ deleted_keys('order_payments', 'order_id', 'loaded_at') }}
            )
    {% endif %}
),

ranked as (
    select
        order_id,
        payment_type,
        payment_value,
        payment_installments,
        loaded_at,
        row_number() over (
            partition by order_id
            order by payment_value desc, payment_sequential asc
        ) as value_rank
    from payments
),

aggregated as (
    select
        order_id,
        max(case when value_rank = 1 then payment_type end) as main_payment_type,
        count(*) as payment_count,
        cast(sum(payment_value) as numeric(14, 2)) as payment_value,
        max(payment_installments) as payment_installments,
        max(case when payment_type = 'voucher' then 1 else 0 end) = 1 as has_voucher,
        max(loaded_at) as loaded_at
    from ranked
    group by order_id
)

select * from aggregated
