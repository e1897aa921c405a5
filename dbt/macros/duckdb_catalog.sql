{#- DuckDB only: two of dbt's steps per incremental model, each reading the catalog in one query.
    dbt-duckdb answers every adapter.get_columns_in_relation with a macro run in a context of its
    own (~10 ms of Python, serialised by the GIL), and an incremental model asked four times per
    build: twice for on_schema_change, twice for persist_docs. On a scheduled build that is a
    sixth of dbt's Python time. Same results; Snowflake keeps dbt-snowflake's macros.
    Both stand in for dbt internals (dbt-core's default__check_for_schema_changes and
    default__persist_docs, which calls dbt-duckdb's duckdb__alter_column_comment): compare them
    with the upstream macros whenever dbt-core or dbt-duckdb is upgraded. -#}

{#- The schema-change check (on_schema_change), with both relations described in one query, which
    also reads the target's comments (as duckdb__persist_docs below reads them) and keeps them in
    the model's context for persist_docs later in the same materialization: one catalog query per
    incremental model instead of two. Nothing between the two changes a comment. -#}
{% macro duckdb__check_for_schema_changes(source_relation, target_relation) %}
    {%- set described = run_query(
        "select 'source' as side, column_name, column_type, null as comment from (describe " ~ source_relation.render() ~ ")"
        ~ " union all select 'target', d.column_name, d.column_type, c.comment from (describe " ~ target_relation.render() ~ ") as d"
        ~ " left join duckdb_columns() as c on c.column_name = d.column_name and " ~ duckdb_catalog_of(target_relation, prefix='c.')
        ~ " union all select 'relation', null, null, comment from duckdb_tables() where " ~ duckdb_catalog_of(target_relation)) -%}
    {%- set source_columns, target_columns, comments = [], [], {'columns': {}} -%}
    {%- for row in described -%}
        {%- if row[0] == 'relation' -%}
            {%- do comments.update({'relation': row[3]}) -%}
        {%- else -%}
            {%- do (source_columns if row[0] == 'source' else target_columns).append(api.Column(row[1], row[2], none, none, none)) -%}
            {%- if row[0] == 'target' -%}
                {%- do comments['columns'].update({row[1]: row[3] or ''}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if 'relation' in comments -%}
        {%- do model.update({'fin_catalog_comments': {target_relation.render() | lower: comments}}) -%}
    {%- endif -%}
    {%- set source_not_in_target = diff_columns(source_columns, target_columns) -%}
    {%- set target_not_in_source = diff_columns(target_columns, source_columns) -%}
    {%- set new_target_types = duckdb_column_type_changes(source_columns, target_columns) -%}
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

{#- dbt-core's default__diff_column_data_types (what diff_column_data_types dispatches to on
    DuckDB): the source's columns whose type differs from the target column of the same name (the
    first such, as dbt's `selectattr | first` takes) and cannot expand to it. dbt's looks the
    target column up by a filter over every target column for each source column, a loop of
    n x n tests through Jinja's sandbox: 420 a model of ~20 columns, the costliest Jinja of a
    small build's schema checks. Here each is looked up in a dict. -#}
{% macro duckdb_column_type_changes(source_columns, target_columns) -%}
    {%- set by_name = {} -%}
    {%- for tc in target_columns if tc.name not in by_name -%}
        {%- do by_name.update({tc.name: tc}) -%}
    {%- endfor -%}
    {%- set result = [] -%}
    {%- for sc in source_columns -%}
        {%- set tc = by_name.get(sc.name) -%}
        {%- if tc and sc.expanded_data_type != tc.expanded_data_type and not sc.can_expand_to(other_column=tc) -%}
            {%- do result.append({'column_name': tc.name, 'new_type': sc.expanded_data_type}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(result) -}}
{%- endmacro %}

{#- persist_docs: reads the comments the relation holds in one query (or takes those the
    schema-change check read) and writes only those that differ from the model's docs, so an
    incremental build that changed no description writes none (nor does one that left a view as
    it was: dbt/macros/views.sql). -#}
{% macro duckdb__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- set relation_docs = for_relation and config.persist_relation_docs() and model.description -%}
    {%- set column_docs = for_columns and config.persist_column_docs() and model.columns -%}
    {#- read by the schema-change check of this materialization, if it ran (above) -#}
    {%- set held = (model.pop('fin_catalog_comments', none) or {}).get(relation.render() | lower) -%}
    {%- if (relation_docs or column_docs) and held is none -%}
        {#- The relation's own row first, then its columns'. -#}
        {%- set rows = run_query(
            "select true as is_relation, null as column_name, comment from "
            ~ ("duckdb_views() where " ~ duckdb_catalog_of(relation, 'view_name') if relation.is_view
               else "duckdb_tables() where " ~ duckdb_catalog_of(relation))
            ~ " union all select false, column_name, comment from duckdb_columns() where " ~ duckdb_catalog_of(relation)
            ~ " order by is_relation desc").rows -%}
        {%- if not rows or not rows[0][0] -%}
            {{ exceptions.raise_compiler_error("persist_docs: " ~ relation ~ " is not in the catalog") }}
        {%- endif -%}
        {%- set held = {'relation': rows[0][2], 'columns': {}} -%}
        {%- for row in rows[1:] -%}
            {%- do held['columns'].update({row[1]: row[2] or ''}) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if relation_docs or column_docs -%}
        {%- set statements = [] -%}
        {%- if relation_docs and (held['relation'] or '') != model.description -%}
            {%- do statements.append(alter_relation_comment(relation, model.description)) -%}
        {%- endif -%}
        {%- set column_comments = held['columns'] -%}
        {%- if column_docs -%}
            {%- set documented = validate_doc_columns(relation, model.columns, column_comments.keys() | list) -%}
            {%- for name, column in documented.items() -%}
                {%- set current = column_comments.get(name, column_comments.get(name | lower, '')) -%}
                {%- if (column.description or '') != current -%}
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

{#- The rows of duckdb_tables() or duckdb_columns() (name table_name), or of duckdb_views() (name
    view_name), that are relation's; prefix qualifies the columns. -#}
{% macro duckdb_catalog_of(relation, name='table_name', prefix='') -%}
    lower({{ prefix }}database_name) = {{ duckdb_catalog_literal(relation.database | lower) }}
    and lower({{ prefix }}schema_name) = {{ duckdb_catalog_literal(relation.schema | lower) }}
    and lower({{ prefix }}{{ name }}) = {{ duckdb_catalog_literal(relation.identifier | lower) }}
{%- endmacro %}

{#- A SQL string literal of text, quotes doubled. -#}
{% macro duckdb_catalog_literal(text) -%}
    '{{ text | replace("'", "''") }}'
{%- endmacro %}
