{#- Fails with every combination of `columns` that occurs more than once (dbt_utils'
    unique_combination_of_columns, written here because dbt deps cannot reach the hub). -#}
{% test unique_combination(model, columns) %}
select
    {% for column in columns %}{{ column }}, {% endfor %}
    count(*) as occurrences
from {{ model }}
group by {% for column in columns %}{{ column }}{{ ", " if not loop.last }}{% endfor %}
having count(*) > 1
{% endtest %}
