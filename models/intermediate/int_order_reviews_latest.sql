-- The latest review per order (an order can have several; a review can cover several orders).
-- Incremental per order: orders with a row loaded (or deleted) since the newest loaded_at here are
-- redone; an order whose rows are all deleted is removed (macros/deletes.sql).
{{
    config(
        unique_key='order_id',
        indexes=pg_indexes('order_id'),
        pre_hook="{{ drop_vanished('order_id', [['order_reviews', 'order_id', 'stg_olist__order_reviews', 'order_id']]) }}",
    )
}}

with

reviews as (
    select * from {{ ref('stg_olist__order_reviews') }}
    {% if is_incremental() %}
        where order_id in (
                {{ newly_loaded('stg_olist__order_reviews', 'order_id') }}
                union
                {{ deleted_keys('order_reviews', 'order_id', 'loaded_at') }}
            )
    {% endif %}
),

ranked as (
    select
        order_id,
        review_id,
        review_score,
        review_answered_at,
        row_number() over (
            partition by order_id
            order by review_answered_at desc, review_created_date desc, review_id desc
        ) as recency_rank,
        max(loaded_at) over (partition by order_id) as loaded_at
    from reviews
),

latest as (
    select
        order_id,
        review_id,
        review_score,
        review_answered_at,
        loaded_at
    from ranked
    where recency_rank = 1
)

select * from latest
