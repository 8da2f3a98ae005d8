-- One row per day from the first purchase to the last promised or actual delivery.
with

orders as (
    select * from {{ ref('stg_olist__orders') }}
),

bounds as (
    select
        min(cast(purchased_at as date)) as first_day,
        max(
            case
                when delivered_to_customer_at > estimated_delivery_date
                    then cast(delivered_to_customer_at as date)
                else estimated_delivery_date
            end
        ) as last_day
    from orders
),

spine as (
    {{ date_spine("(select first_day from bounds)", "(select last_day from bounds)") }}
),

final as (
    select
        date_day,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
        cast(extract(year from date_day) as integer) as year_number,
        cast(extract(quarter from date_day) as integer) as quarter_number,
        cast(extract(month from date_day) as integer) as month_number,
        cast(extract(day from date_day) as integer) as day_of_month_number,
        cast(extract(dow from date_day) as integer) as day_of_week_number,
        extract(dow from date_day) in (0, 6) as is_weekend
    from spine
)

select * from final
