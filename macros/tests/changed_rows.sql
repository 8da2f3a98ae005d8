{#-
    Builds cost the change (README, "Which tests run when"). dbt wraps the model of every generic
    data test in get_where_subquery; this override adds, on an hourly build, a filter to the rows
    of this run for tests on incremental models and on the raw olist tables:

        <load time column> > (newest build start in raw._build_log) - lookback_hours

    the same window loaders/build/scope.py selects the models by. The load time column is
    `_loaded_at` on a raw table, `loaded_at` or `source_loaded_at` on an incremental model (the
    first one it has). A bad row loaded in this run is still tested, so its gate still stops
    what is downstream; a bad row loaded earlier was tested by the build that loaded it.
    Full-table tests run with --vars '{test_scope: all}' (`dwh build` passes it on the first and
    on full builds, on --full-refresh and at least every DWH_FULL_TESTS_HOURS) and on
    --full-refresh. A test's own `where` config is kept (both apply).
-#}
{% macro default__get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}{%- do conditions.append('(' ~ where ~ ')') -%}{%- endif -%}
    {%- set changed = changed_rows_condition() -%}
    {%- if changed -%}{%- do conditions.append(changed) -%}{%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}


{#- '' (test every row) or the condition that keeps the rows of this run (see above). -#}
{% macro changed_rows_condition() -%}
    {%- if not execute or var('test_scope', 'changed') != 'changed' or flags.FULL_REFRESH -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set column = changed_rows_column() -%}
    {%- if not column -%}{%- do return('') -%}{%- endif -%}
    {%- set hours = var('lookback_hours', 3) | int -%}
    {%- set since -%}
        (select {{ dbt.dateadd('hour', -1 * hours, "coalesce(max(started_at), cast('1900-01-01' as timestamp))") }}
         from {{ adapter.quote(env_var('DWH_RAW_SCHEMA', 'raw')) }}._build_log)
    {%- endset -%}
    {%- do return(adapter.quote(column) ~ ' > ' ~ since) -%}
{%- endmacro %}


{#- The load time column of the node the current test is attached to, or none. -#}
{% macro changed_rows_column() -%}
    {%- set attached = model.get('attached_node') -%}
    {%- if attached and attached in graph.nodes -%}
        {%- set node = graph.nodes[attached] -%}
        {%- if node.config.materialized == 'incremental' -%}
            {%- for column in ['loaded_at', 'source_loaded_at'] if column in node.columns -%}
                {%- do return(column) -%}
            {%- endfor -%}
        {%- endif -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set sources = model.get('sources') or [] -%}
    {%- if sources | length == 1 and sources[0][0] == 'olist' -%}
        {%- do return('_loaded_at') -%}
    {%- endif -%}
    {%- do return(none) -%}
{%- endmacro %}
