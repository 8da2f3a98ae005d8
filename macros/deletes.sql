{#-
    Deletes through the incremental models (docs/architecture.md, contract 8).

    A deleted source row reaches raw as a tombstone (_op = 'd'). latest_version() drops a key
    whose latest version is one; these macros make the incremental models follow:
    - drop_deleted_keys: a staging model's pre-hook, removes the keys whose latest version in
      raw is a tombstone (an incremental run's delete+insert only replaces keys it still has);
    - deleted_keys: the `key` values (a raw column) of rows tombstoned since the model's newest
      `since_column` minus the lookback, read from the key's earlier versions: what an
      incremental intermediate model or fact must recompute;
    - drop_vanished: an intermediate model's or fact's pre-hook, removes rows whose key had a
      tombstoned row and that the upstream model no longer has.

    Their cost follows the deletes of the build window, not the raw tables: each reads only the
    tombstones loaded since `incremental_since(...)`, the bound the model's own incremental
    selection uses (latest_version, newly_loaded, deleted_keys, changed_orders). They are
    PRE-hooks so that this bound is read before the model's insert moves the model's newest
    load time on (as a post-hook, a tombstone loaded in the same batch as the newest inserted
    row, i.e. at the newest load time itself, would fall outside `> newest - lookback` with a
    lookback of 0). Deleting first is equivalent to deleting after: the insert that follows
    cannot bring such a key back (its rows come from the same upstream that lacks it). The
    bound is as safe as the model's selection: a tombstone whose build failed is still in the
    window (the model's newest load time did not move: the hook runs in the model's
    transaction), a late batch is caught within the lookback like any late row, and a first
    build or --full-refresh ranks all of raw (latest_version drops tombstoned keys; the hooks
    do nothing then). tests/test_deletes.py and tests/test_deletes_window.py.
-#}
{% macro _raw_key_info(table_name) -%}
    {%- set node = graph.sources.values() | selectattr('source_name', 'equalto', 'olist')
                   | selectattr('name', 'equalto', table_name) | first -%}
    {%- if node is none -%}
        {{ exceptions.raise_compiler_error("deletes: no source olist." ~ table_name) }}
    {%- endif -%}
    {{ return({'key': node.meta['primary_key'], 'cursor': node.meta['cursor']}) }}
{%- endmacro %}


{% macro drop_deleted_keys(table_name, model_keys=none) -%}
    {#- model_keys: the model's names of the raw primary key columns, when it renames them -#}
    {%- if execute and is_incremental() -%}
        {%- set info = _raw_key_info(table_name) -%}
        {%- set relation = source('olist', table_name) -%}
        {%- set keys = info['key'] -%}
        delete from {{ this }}
        using (
            select {% for k in keys %}ranked.{{ adapter.quote(k) }}{{ ", " if not loop.last }}{% endfor %}
            from (
                select
                    versions.*,
                    row_number() over (
                        partition by {% for k in keys %}versions.{{ adapter.quote(k) }}{{ ", " if not loop.last }}{% endfor %}
                        order by versions.{{ adapter.quote(info['cursor']) }} desc, versions._batch_id desc, versions._change_seq desc
                    ) as _version_rank
                from {{ relation }} as versions
                where exists (
                    select 1 from {{ relation }} as tombstones
                    where tombstones._op = 'd'
                    and tombstones._loaded_at > {{ incremental_since('loaded_at') }}
                    {%- for k in keys %}
                    and tombstones.{{ adapter.quote(k) }} = versions.{{ adapter.quote(k) }}
                    {%- endfor %}
                )
            ) as ranked
            where ranked._version_rank = 1 and ranked._op = 'd'
        ) as deleted
        where
        {%- for k in keys %}
            {{ this.identifier }}.{{ adapter.quote((model_keys or keys)[loop.index0]) }} = deleted.{{ adapter.quote(k) }}{{ " and" if not loop.last }}
        {%- endfor %}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{% macro deleted_keys(table_name, key, since_column, via=none) -%}
    {#- key: a raw column of the table's primary key; or, with `via` (the raw primary key column,
        single-column keys only), any raw column, read from the deleted key's earlier versions -#}
    {%- set relation = source('olist', table_name) -%}
    {%- if via is none %}
    select {{ adapter.quote(key) }} from {{ relation }}
    where _op = 'd' and _loaded_at > {{ incremental_since(since_column) }}
    {%- else %}
    select versions.{{ adapter.quote(key) }} from {{ relation }} as versions
    where versions.{{ adapter.quote(key) }} is not null and versions.{{ adapter.quote(via) }} in (
        select {{ adapter.quote(via) }} from {{ relation }}
        where _op = 'd' and _loaded_at > {{ incremental_since(since_column) }}
    )
    {%- endif -%}
{%- endmacro %}


{% macro drop_vanished(key, checks, since_column='loaded_at') -%}
    {#- checks: list of [raw table, raw key column, upstream model, upstream key column, via?]
        (see deleted_keys for `via`); a row goes when its key had a tombstoned row, loaded
        since this model's newest `since_column` minus the lookback, in one of the raw tables
        and one of the upstream models lacks it. -#}
    {%- if execute and is_incremental() -%}
        {%- set window = "_loaded_at > " ~ incremental_since(since_column) -%}
        {%- set tombstoned = [] -%}
        {%- for check in checks -%}
            {%- set relation = source('olist', check[0]) -%}
            {%- set raw_key = adapter.quote(check[1]) -%}
            {%- if check | length > 4 -%}
                {%- set via = adapter.quote(check[4]) -%}
                {%- do tombstoned.append(
                    "select " ~ raw_key ~ " as vanished_key from " ~ relation ~ " where " ~ via ~ " in (select "
                    ~ via ~ " from " ~ relation ~ " where _op = 'd' and " ~ window ~ ")") -%}
            {%- else -%}
                {%- do tombstoned.append("select " ~ raw_key ~ " as vanished_key from " ~ relation ~ " where _op = 'd' and " ~ window) -%}
            {%- endif -%}
        {%- endfor %}
        {#- The tombstoned keys that an upstream model lacks, one anti join per upstream model,
            then one semi join with this model. Not `key not in (upstream)` nor `not exists (...)
            or not exists (...)` over this model's rows: PostgreSQL runs both as a subquery per
            row of this model (hours at 1M rows); this form costs one pass over each table. -#}
        delete from {{ this }}
        where {{ key }} in (
            {%- for check in checks %}
            select tombstoned.vanished_key
            from (
                {{ tombstoned | join('\n                union\n                ') }}
            ) as tombstoned
            where tombstoned.vanished_key is not null and not exists (
                select 1 from {{ ref(check[2]) }} as upstream
                where upstream.{{ check[3] }} = tombstoned.vanished_key
            )
            {{- "\n            union" if not loop.last }}
            {%- endfor %}
        )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
