-- Units and revenue per product category (English) and purchase year.
with

items as (
    select * from {{ ref('fact_order_items') }}
),

products as (
    select * from {{ ref('dim_product') }}
),

dates as (
    select * from {{ ref('dim_date') }}
),

final as (
    select
        products.category_name_english,
        dates.year_number,
        count(*) as units_sold,
        count(distinct items.order_id) as order_count,
        sum(items.price) as revenue,
        sum(items.freight_value) as freight_revenue
    from items
    inner join products on items.product_id = products.product_id
    inner join dates on items.purchase_date = dates.date_day
    group by products.category_name_english, dates.year_number
)

select * from final
