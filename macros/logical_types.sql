{#-
    The logical column types of the sources YAML (loaders/declarations/types.py), as Redshift
    spells them, for the DDL that dbt's macros render (macros/spectrum.sql). The same mapping as
    LogicalType.sql('redshift'): VARCHAR lengths count bytes, four per UTF-8 character;
    tests/test_funnel_declaration.py checks that the two agree.
-#}

{% macro redshift_type(data_type) -%}
    {%- set text = data_type | lower | replace(' ', '') -%}
    {%- set kind = text.split('(')[0] -%}
    {%- set args = text[kind | length + 1:-1].split(',') if '(' in text else [] -%}
    {%- if kind in ('char', 'varchar') -%}
        varchar({{ (args[0] | int) * 4 }})
    {%- elif kind == 'text' -%}
        varchar(65535)
    {%- elif kind == 'integer' -%}
        integer
    {%- elif kind == 'bigint' -%}
        bigint
    {%- elif kind == 'double' -%}
        double precision
    {%- elif kind == 'timestamp' -%}
        timestamp
    {%- elif kind == 'decimal' -%}
        decimal({{ args[0] }},{{ args[1] }})
    {%- else -%}
        {{ exceptions.raise_compiler_error("redshift_type: unknown logical type " ~ data_type) }}
    {%- endif -%}
{%- endmacro %}


{#- The declared columns of a source table (graph.sources), in declaration order. -#}
{% macro source_columns(source_name, table_name) -%}
    {%- for node in graph.sources.values()
        if node.source_name == source_name and node.name == table_name -%}
        {{ return(node.columns.values() | list) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("source_columns: no source " ~ source_name ~ "." ~ table_name) }}
{%- endmacro %}
