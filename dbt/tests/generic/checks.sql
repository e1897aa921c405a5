{#- A model's column checks in one query, one test node (macros/checks.sql): dbt's fixed cost per
    test node was most of a scheduled build's test time. columns maps each column to its checks,
    as dbt's own tests would be listed under it: not_null, unique, {accepted_values: [...]},
    {relationships: {to: ref(...), field: ...}}; key names the column whose value a failure
    shows for not_null. Fails naming every check that failed, its column, its count of rows
    and an example.
    scope: 'run' (default) checks what get_where_subquery gives every test of the model (on an
    incremental model the rows the latest run wrote); 'cut' checks the rows within the build's
    consistent cut not checked before (rows_in_cut): for relationships between tables that load
    at their own pace, where a row beyond the cut may not have its parent yet. -#}
{% test column_checks(model, columns, key=none, scope='run') %}
{%- if scope == 'cut' -%}
    {%- set depends_on_cut = ref('cut') -%} {#- read by rows_in_cut, through get_where_subquery -#}
{%- endif %}
{{ column_checks_sql(model, columns, key) }}
{% endtest %}
