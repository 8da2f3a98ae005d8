{#-
    dbt run-operation create_model_indexes: on PostgreSQL, creates the `indexes` a model declares
    (macros/pg_indexes.sql) that its table lacks. dbt creates a model's indexes only when it
    creates the table (first build, --full-refresh); this gives them to the tables of a
    warehouse built before they were declared, without rebuilding. An index counts as present
    when the table has one on the same columns in the same order. Logs one line per index
    created; elsewhere than PostgreSQL it does nothing.
-#}
{% macro create_model_indexes() -%}
    {%- if target.type != 'postgres' -%}
        {{ log("create_model_indexes: indexes are PostgreSQL's; nothing to do on " ~ target.type, info=true) }}
        {{ return(none) }}
    {%- endif -%}
    {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.config.get('indexes') -%}
        {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- if relation is not none and relation.is_table -%}
            {%- set present = run_query(
                "select string_agg(a.attname, ',' order by k.ord) from pg_index as i"
                ~ " cross join unnest(i.indkey) with ordinality as k(attnum, ord)"
                ~ " join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum"
                ~ " where i.indrelid = '" ~ relation.include(database=False) ~ "'::regclass"
                ~ " group by i.indexrelid").columns[0].values() -%}
            {%- for index in node.config.indexes -%}
                {%- if index['columns'] | join(',') not in present -%}
                    {%- do run_query(get_create_index_sql(relation, index)) -%}
                    {{ log("create_model_indexes: " ~ relation ~ " (" ~ index['columns'] | join(', ') ~ ")", info=true) }}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}
