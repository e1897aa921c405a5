{#- DuckDB only: two of dbt's steps per incremental model, each reading the catalog in one query.
    dbt-duckdb answers every adapter.get_columns_in_relation with a macro run in a context of its
    own (~10 ms of Python, serialised by the GIL), and an incremental model asked four times per
    build: twice for on_schema_change, twice for persist_docs. On a scheduled build that is a
    sixth of dbt's Python time. Same results; Snowflake keeps dbt-snowflake's macros.
    Both stand in for dbt internals (dbt-core's default__check_for_schema_changes and
    default__persist_docs, which calls dbt-duckdb's duckdb__alter_column_comment): compare them
    with the upstream macros whenever dbt-core or dbt-duckdb is upgraded. -#}

{#- The schema-change check (on_schema_change), with both relations described in one query. -#}
{% macro duckdb__check_for_schema_changes(source_relation, target_relation) %}
    {%- set described = run_query(
        "select 'source' as side, column_name, column_type from (describe " ~ source_relation.render() ~ ")"
        ~ " union all select 'target', column_name, column_type from (describe " ~ target_relation.render() ~ ")") -%}
    {%- set source_columns, target_columns = [], [] -%}
    {%- for row in described -%}
        {%- do (source_columns if row[0] == 'source' else target_columns).append(api.Column(row[1], row[2], none, none, none)) -%}
    {%- endfor -%}
    {%- set source_not_in_target = diff_columns(source_columns, target_columns) -%}
    {%- set target_not_in_source = diff_columns(target_columns, source_columns) -%}
    {%- set new_target_types = diff_column_data_types(source_columns, target_columns) -%}
    {%- set changes = {
        'schema_changed': source_not_in_target != [] or target_not_in_source != [] or new_target_types != [],
        'source_not_in_target': source_not_in_target,
        'target_not_in_source': target_not_in_source,
        'source_columns': source_columns,
        'target_columns': target_columns,
        'new_target_types': new_target_types,
    } -%}
    {%- do log("In " ~ target_relation ~ ": schema changed: " ~ changes['schema_changed']
        ~ "; source columns not in target: " ~ source_not_in_target ~ "; target columns not in source: "
        ~ target_not_in_source ~ "; new column types: " ~ new_target_types) -%}
    {{ return(changes) }}
{% endmacro %}

{#- persist_docs: reads the comments the relation holds in one query and writes only those that
    differ from the model's docs, so an incremental build that changed no description writes none
    (a view is created anew by each build, so its comments are written each time). -#}
{% macro duckdb__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- set relation_docs = for_relation and config.persist_relation_docs() and model.description -%}
    {%- set column_docs = for_columns and config.persist_column_docs() and model.columns -%}
    {%- if relation_docs or column_docs -%}
        {%- set in_schema -%}
            lower(database_name) = {{ duckdb_catalog_literal(relation.database | lower) }}
            and lower(schema_name) = {{ duckdb_catalog_literal(relation.schema | lower) }}
        {%- endset -%}
        {%- set name = duckdb_catalog_literal(relation.identifier | lower) -%}
        {#- The relation's own row first, then its columns'. -#}
        {%- set rows = run_query(
            "select true as is_relation, null as column_name, comment from "
            ~ ("duckdb_views() where lower(view_name) = " if relation.is_view else "duckdb_tables() where lower(table_name) = ")
            ~ name ~ " and " ~ in_schema
            ~ " union all select false, column_name, comment from duckdb_columns() where lower(table_name) = "
            ~ name ~ " and " ~ in_schema ~ " order by is_relation desc").rows -%}
        {%- if not rows or not rows[0][0] -%}
            {{ exceptions.raise_compiler_error("persist_docs: " ~ relation ~ " is not in the catalog") }}
        {%- endif -%}
        {%- set statements = [] -%}
        {%- if relation_docs and (rows[0][2] or '') != model.description -%}
            {%- do statements.append(alter_relation_comment(relation, model.description)) -%}
        {%- endif -%}
        {%- set column_comments = {} -%}
        {%- for row in rows[1:] -%}
            {%- do column_comments.update({row[1]: row[2] or ''}) -%}
        {%- endfor -%}
        {%- if column_docs -%}
            {%- set documented = validate_doc_columns(relation, model.columns, column_comments.keys() | list) -%}
            {%- for name, column in documented.items() -%}
                {%- set held = column_comments.get(name, column_comments.get(name | lower, '')) -%}
                {%- if (column.description or '') != held -%}
                    {%- do statements.append("comment on column " ~ relation ~ "." ~ (adapter.quote(name) if column.quote else name)
                        ~ " is " ~ duckdb_escape_comment(column.description or '') ~ ";") -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}
        {%- if statements -%}
            {%- do run_query(statements | join('\n')) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- A SQL string literal of text, quotes doubled. -#}
{% macro duckdb_catalog_literal(text) -%}
    '{{ text | replace("'", "''") }}'
{%- endmacro %}
