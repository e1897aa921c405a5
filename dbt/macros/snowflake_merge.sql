{#- dbt-snowflake's MERGE (snowflake__get_merge_sql, dbt-snowflake 1.11) with one change: the
    values of WHEN NOT MATCHED THEN INSERT name their table (DBT_INTERNAL_SOURCE."COL", the form
    Snowflake's MERGE documentation uses) instead of bare column names, which Snowflake resolves
    to the source but fakesnow (DuckDB's binder) rejects as ambiguous. The same statement then runs
    on Snowflake and on fakesnow, so the incremental test runs the production MERGE. Compare with
    the upstream macro whenever dbt-snowflake is upgraded. -#}
{% macro snowflake__get_merge_sql(target, source_sql, unique_key, dest_columns, incremental_predicates) -%}
    {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute='name')) -%}
    {%- set sql_header = config.get('sql_header', none) -%}
    {%- set dml -%}
    {%- if unique_key is none -%}
        {{ sql_header if sql_header is not none }}
        insert into {{ target }} ({{ dest_cols_csv }})
        (
            select {{ dest_cols_csv }}
            from {{ source_sql }}
        )
    {%- else -%}
        {%- set merge = default__get_merge_sql(target, source_sql, unique_key, dest_columns, incremental_predicates) -%}
        {%- set source_values = [] -%}
        {%- for column in dest_cols_csv.split(', ') -%}
            {%- do source_values.append('DBT_INTERNAL_SOURCE.' ~ column) -%}
        {%- endfor -%}
        {%- set pattern = 'values\\s*\\(\\s*' ~ modules.re.escape(dest_cols_csv) ~ '\\s*\\)' -%}
        {%- if modules.re.search(pattern, merge) is none -%}
            {{ exceptions.raise_compiler_error("snowflake__get_merge_sql: dbt's MERGE no longer ends with values (" ~ dest_cols_csv ~ "); compare dbt/macros/snowflake_merge.sql with dbt-snowflake's") }}
        {%- endif -%}
        {{ modules.re.sub(pattern, 'values (' ~ source_values | join(', ') ~ ')', merge) }}
    {%- endif -%}
    {%- endset -%}
    {%- if snowflake__is_catalog_linked_database(relation=config.model) -%}
        {%- do return(dml) -%}
    {%- else -%}
        {%- do return(explicit_transaction(dml)) -%}
    {%- endif -%}
{%- endmacro %}
