-- Incremental on the declared primary key, as named here; a key deleted in the source (its latest
-- version a tombstone) is removed before each incremental run inserts (pre-hook, macros/deletes.sql).
{{
    config(
        unique_key=['review_id', 'order_id'],
        indexes=pg_indexes(['review_id', 'order_id']),
        pre_hook="{{ drop_deleted_keys('order_reviews') }}",
    )
}}

with

source as (
    select * from {{ latest_version('olist', 'order_reviews') }}
),

renamed as (
    select
        review_id,
        order_id,
        review_comment_title,
        review_comment_message,
        review_score,
        cast(review_creation_date as date) as review_created_date,
        review_answer_timestamp as review_answered_at,
        updated_at as source_updated_at,
        _batch_id as batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
