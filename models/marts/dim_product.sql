-- Products with their English category. Products with no category, or with a category the
-- translation seed lacks (pc_gamer, ...), get the explicit 'unknown' category member.
with

products as (
    select * from {{ ref('stg_olist__products') }}
),

translations as (
    select * from {{ ref('category_name_translation') }}
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
        translations.product_category_name_english is not null as is_category_known
    from products
    left join translations
        on products.category_name = translations.product_category_name
)

select * from final
