-- The facts hold exactly one row per key in staging: no order or item lost or duplicated
-- by any sequence of incremental runs. Returns the fact and the mismatching counts.
with

counts as (
    select
        'fact_orders' as fact_name,
        (select count(*) from {{ ref('fact_orders') }}) as fact_rows,
        (select count(distinct order_id) from {{ ref('stg_olist__orders') }}) as staged_keys
    union all
    select
        'fact_order_items' as fact_name,
        (select count(*) from {{ ref('fact_order_items') }}) as fact_rows,
        (
            select count(*)
            from {{ ref('stg_olist__order_items') }} as items
            inner join {{ ref('stg_olist__orders') }} as orders on items.order_id = orders.order_id
        ) as staged_keys
)

select * from counts
where fact_rows != staged_keys
