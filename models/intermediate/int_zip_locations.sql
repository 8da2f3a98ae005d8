-- One location per zip prefix: geolocation has several rows per prefix and exact duplicates,
-- so it is reduced here before anything joins it (joining it raw fans out).
-- Incremental: a run recomputes the prefixes with a row loaded (or deleted) since the newest loaded_at
-- here; a prefix whose rows are all deleted is removed (macros/deletes.sql).
{{
    config(
        unique_key='zip_code_prefix',
        indexes=pg_indexes('zip_code_prefix'),
        pre_hook="{{ drop_vanished('zip_code_prefix', [['geolocation', 'geolocation_zip_code_prefix', 'stg_olist__geolocation', 'zip_code_prefix', 'geolocation_id']]) }}",
    )
}}

with

geolocation as (
    select * from {{ ref('stg_olist__geolocation') }}
    {% if is_incremental() %}
        where zip_code_prefix in (
                {{ newly_loaded('stg_olist__geolocation', 'zip_code_prefix') }}
                union
                {{ deleted_keys('geolocation', 'geolocation_zip_code_prefix', 'loaded_at', via='geolocation_id') }}
            )
    {% endif %}
),

spellings as (
    select
        zip_code_prefix,
        city,
        state,
        count(*) as occurrences
    from geolocation
    group by zip_code_prefix, city, state
),

most_common_spelling as (
    select
        zip_code_prefix,
        city,
        state,
        row_number() over (
            partition by zip_code_prefix
            order by occurrences desc, city asc, state asc
        ) as spelling_rank
    from spellings
),

coordinates as (
    select
        zip_code_prefix,
        avg(latitude) as latitude,
        avg(longitude) as longitude,
        max(loaded_at) as loaded_at
    from geolocation
    group by zip_code_prefix
),

locations as (
    select
        coordinates.zip_code_prefix,
        most_common_spelling.city,
        most_common_spelling.state,
        coordinates.latitude,
        coordinates.longitude,
        coordinates.loaded_at
    from coordinates
    inner join most_common_spelling
        on
            coordinates.zip_code_prefix = most_common_spelling.zip_code_prefix
            and most_common_spelling.spelling_rank = 1
)

select * from locations
