-- View-to-purchase conversion per product category (the product's own, in English) and month.
with

events as (
    select * from {{ ref('fact_funnel_events') }}
),

final as (
    select
        product_category_name_english,
        event_month_number,
        sum(case when is_view then 1 else 0 end) as view_count,
        sum(case when is_add_to_cart then 1 else 0 end) as add_to_cart_count,
        sum(case when is_purchase then 1 else 0 end) as purchase_count,
        case
            when sum(case when is_view then 1 else 0 end) = 0 then null
            else
                1.0 * sum(case when is_purchase then 1 else 0 end)
                / sum(case when is_view then 1 else 0 end)
        end as view_to_purchase_rate
    from events
    group by product_category_name_english, event_month_number
)

select * from final
