-- Reconciliation: every raw table holds exactly the rows its load log says were inserted.
-- Returns each table whose counts differ.
{% set tables = [] %}
{% for node in graph.sources.values() if node.source_name == 'olist' %}
    {% do tables.append(node.name) %}
{% endfor %}

with

load_log as (
    select
        table_name,
        sum(rows_inserted) as rows_logged
    from "{{ env_var('DWH_RAW_SCHEMA', 'raw') }}"._load_log
    group by table_name
),

raw_counts as (
    {% for table in tables %}
    select '{{ table }}' as table_name, count(*) as rows_stored
    from {{ source('olist', table) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    raw_counts.table_name,
    raw_counts.rows_stored,
    coalesce(load_log.rows_logged, 0) as rows_logged
from raw_counts
left join load_log on raw_counts.table_name = load_log.table_name
where raw_counts.rows_stored != coalesce(load_log.rows_logged, 0)
