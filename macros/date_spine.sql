{#-
    One row per day from start_date to end_date (both SQL date expressions), as `date_day`.
    Numbers come from cross-joined digits, which every warehouse runs (Redshift has no
    generate_series for tables); `days` bounds how many are generated (default 10,000 = 27 years).
-#}
{% macro date_spine(start_date, end_date, days=10000) -%}
    {%- set digits = (days | string) | length - 1 -%}
    with

    digits as (
        {% for digit in range(10) %}select {{ digit }} as digit{% if not loop.last %} union all {% endif %}{% endfor %}
    ),

    numbers as (
        select
            {% for position in range(digits) %}d{{ position }}.digit * {{ 10 ** position }}{% if not loop.last %} + {% endif %}{% endfor %} as day_number
        from {% for position in range(digits) %}digits as d{{ position }}{% if not loop.last %} cross join {% endif %}{% endfor %}
    ),

    bounds as (
        select
            cast({{ start_date }} as date) as start_date,
            cast({{ end_date }} as date) as end_date
    ),

    days as (
        select cast({{ dbt.dateadd('day', 'numbers.day_number', 'bounds.start_date') }} as date) as date_day
        from numbers
        cross join bounds
        where numbers.day_number <= {{ dbt.datediff('bounds.start_date', 'bounds.end_date', 'day') }}
    )

    select date_day from days
{%- endmacro %}
