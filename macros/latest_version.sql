{#-
    Latest version per key of an append-only raw table (docs/architecture.md, contract 5).

    The key and the cursor come from the table's declaration in _olist__sources.yml (meta), the
    same place the loaders read them, so they are never written twice. The declared columns are
    read as declared (macros/declared_columns.sql): an undeclared raw column does not reach
    staging, and a raw column widened by a schema change keeps its declared type. Versions are
    ordered by cursor desc, _batch_id desc, _change_seq desc (contract 8): when cursors tie (a
    change under an unchanged cursor), the newest load wins. A key whose latest version is a
    tombstone (_op = 'd') is dropped; the staging model's pre-hook `drop_deleted_keys` removes it
    from an incremental model.

    In an incremental run of the calling model, only the keys with a row loaded since the
    model's newest `loaded_at` (minus var lookback_hours) are recomputed, over all of their
    versions: a late batch that brings an older version cannot win over a newer one.

        select * from {{ latest_version('olist', 'orders') }}
-#}
{% macro latest_version(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set key = ['_batch_id'] -%}
    {%- set cursor = '_loaded_at' -%}
    {%- set node = none -%}
    {%- if execute -%}
        {%- set node = graph.sources.values() | selectattr('source_name', 'equalto', source_name)
                       | selectattr('name', 'equalto', table_name) | first -%}
        {%- if node is none or not node.meta.get('primary_key') or not node.meta.get('cursor') -%}
            {{ exceptions.raise_compiler_error(
                "latest_version: source " ~ source_name ~ "." ~ table_name
                ~ " needs meta.primary_key and meta.cursor in its declaration") }}
        {%- endif -%}
        {%- set key = node.meta['primary_key'] -%}
        {%- set cursor = node.meta['cursor'] -%}
    {%- endif -%}
    (
        select *
        from (
            select
                {% if node is defined and node is not none -%}
                {{ declared_columns('versions', node) }},
                {%- else -%}
                versions.*,
                {%- endif %}
                row_number() over (
                    partition by {% for column in key %}versions.{{ adapter.quote(column) }}{{ ", " if not loop.last }}{% endfor %}
                    order by versions.{{ adapter.quote(cursor) }} desc, versions._batch_id desc, versions._change_seq desc
                ) as _version_rank
            from {{ relation }} as versions
            {%- if is_incremental() %}
            where exists (
                select 1
                from {{ relation }} as changed
                where
                    changed._loaded_at > {{ incremental_since('loaded_at') }}
                    {%- for column in key %}
                    and changed.{{ adapter.quote(column) }} = versions.{{ adapter.quote(column) }}
                    {%- endfor %}
            )
            {%- endif %}
        ) as ranked
        where _version_rank = 1 and coalesce(_op, 'r') <> 'd'
    ) as latest_versions
{%- endmacro %}
