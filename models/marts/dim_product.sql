-- Products with their English category. Products with no category, or with a category the
-- translation seed lacks (pc_gamer, ...), get the explicit 'unknown' category member.
-- Incremental: products loaded since the newest source_loaded_at here, and products whose
-- English category no longer matches the seed (a seed change heals itself on the next run).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='product_id',
        indexes=pg_indexes('product_id', 'source_loaded_at'),
        on_schema_change='fail',
    )
}}

with

translations as (
    select * from {{ ref('category_name_translation') }}
),

products as (
    select * from {{ ref('stg_olist__products') }}
    {% if is_incremental() %}
        where
            loaded_at > {{ incremental_since('source_loaded_at') }}
            or product_id in (
                select existing.product_id
                from {{ this }} as existing
                left join translations
                    on existing.category_name = translations.product_category_name
                where existing.category_name_english
                    != coalesce(translations.product_category_name_english, 'unknown')
            )
    {% endif %}
),

final as (
    select
        products.product_id,
        coalesce(products.category_name, 'unknown') as category_name,
        coalesce(translations.product_category_name_english, 'unknown') as category_name_english,
        products.name_length,
        products.description_length,
        products.photo_count,
        products.weight_g,
        products.length_cm,
        products.height_cm,
        products.width_cm,
        translations.product_category_name_english is not null as is_category_known,
        cast(products.loaded_at as timestamp) as source_loaded_at
    from products
    left join translations
        on products.category_name = translations.product_category_name
)

select * from final
