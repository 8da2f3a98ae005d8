{#-
    The columns of a raw table as declared (docs/architecture.md, contract 12): each declared
    column cast to its declared type, each other listed column (the loader's metadata: no
    data_type) as it is. Columns the raw table has but the declaration does not list (a new
    source column that DWH_SCHEMA_CHANGES=evolve took into raw) are not selected: nothing reaches
    staging until a person declares it. A raw column widened by a schema change reads as its
    declared type: the extract refuses a value that does not fit it (loaders/extract/values.py,
    check_declared), so this cast neither fails, cuts a string nor rounds a decimal.

    `declared_type` spells a logical type (loaders/declarations/types.py, which this mirrors) for
    the target's engine.
-#}
{% macro declared_columns(alias, node) -%}
    {%- for column in node.columns.values() -%}
        {%- if column.data_type -%}
            cast({{ alias }}.{{ adapter.quote(column.name) }} as {{ declared_type(column.data_type) }}) as {{ adapter.quote(column.name) }}
        {%- else -%}
            {{ alias }}.{{ adapter.quote(column.name) }}
        {%- endif -%}
        {{ ",\n                " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}


{% macro declared_type(data_type) -%}
    {%- set text = data_type | lower | replace(' ', '') -%}
    {%- set kind = text.split('(')[0] -%}
    {%- set args = text.split('(')[1].rstrip(')').split(',') if '(' in text else [] -%}
    {%- set engine = target.type -%}
    {%- if kind in ('char', 'varchar') -%}
        {{- 'varchar' if engine == 'duckdb' else 'varchar(' ~ ((args[0] | int) * (4 if engine == 'redshift' else 1)) ~ ')' -}}
    {%- elif kind == 'text' -%}
        {{- 'varchar' if engine == 'duckdb' else 'varchar(65535)' if engine == 'redshift' else 'text' -}}
    {%- elif kind == 'double' -%}
        {{- 'double' if engine == 'duckdb' else 'double precision' -}}
    {%- elif kind == 'decimal' -%}
        {{- 'decimal(' ~ args[0] ~ ',' ~ args[1] ~ ')' -}}
    {%- elif kind in ('integer', 'bigint', 'timestamp') -%}
        {{- kind -}}
    {%- else -%}
        {{ exceptions.raise_compiler_error("declared_type: unknown data_type " ~ data_type) }}
    {%- endif -%}
{%- endmacro %}
