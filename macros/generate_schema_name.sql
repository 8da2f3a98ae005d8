{#- Custom schemas are used as named (staging, marts, bi), not prefixed with the target schema,
    so QuickSight and analysts see stable schema names on every warehouse. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
