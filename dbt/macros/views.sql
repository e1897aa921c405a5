{#- DuckDB only: a view whose definition has not changed is left as it is. dbt's view
    materialization recreates every selected view on every build (create a new view, rename the
    old one away and the new one in, write its comments again, drop the old one, commit: nine
    statements, and a node that costs about as much as an incremental model's), although the
    gold views (dim_customers, dim_accounts) only change when the project does. Here the view
    carries the md5 of its compiled SQL as the name of an unused CTE around it (DuckDB keeps it
    in the view's text), so one catalog query tells whether the view held is this definition:
    then it stays and only its comments are compared (persist_docs writes those that differ);
    otherwise it is replaced in one statement (create or replace view, in the node's
    transaction) and its comments written. DuckDB's own text of two views cannot be compared
    instead: it lists an EXCLUDE's columns in no fixed order. A table in the view's place,
    hooks, grants, a contract, a SQL header or --full-refresh: dbt's own materialization,
    unchanged. Snowflake keeps dbt-snowflake's.
    It was written against these installed view materializations (package, version, file,
    sha256 of the block); scripts/dbt/materialization.py --check (scripts/test.d/20-lint.sh)
    fails when one changes:
    upstream dbt-adapters 1.24.5 dbt/include/global_project/macros/materializations/models/view.sql e5e020732cff4f18aba80e75aa216e569a082f77d1f602d4eafa73fa07e6d9fb
    upstream dbt-snowflake 1.11.6 dbt/include/snowflake/macros/materializations/view.sql cdcbc4a377c5f998ff843eaead59a5ac39206d9cffb56ec508a405722e073ac4
-#}
{%- materialization view, adapter='duckdb' -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- if (existing is not none and not existing.is_view) or pre_hooks or post_hooks or config.get('grants')
        or config.get('sql_header') or (model.get('contract') or {}).get('enforced') or should_full_refresh() -%}
        {{ return(dbt.materialization_view_default()) }}
    {%- endif -%}
    {%- set target = this.incorporate(type='view') -%}
    {%- set tag = 'fin_definition_' ~ local_md5(sql) -%}
    {#- dbt requires a model's statement 'main': the lookup, and the replacement when there is one -#}
    {%- call statement('main', fetch_result=True) -%}
        select count(*) from duckdb_views()
        where not temporary and {{ duckdb_catalog_of(target, 'view_name') }} and contains(sql, '{{ tag }}')
    {%- endcall -%}
    {%- if load_result('main')['table'].columns[0].values()[0] == 0 -%}
        {%- call statement('main') -%}
            create or replace view {{ target }} as (
                with "{{ tag }}" as (select 1)
                select * from (
                    {{ sql }}
                ) as definition
            )
        {%- endcall -%}
    {%- else -%}
        {%- do log("View " ~ target ~ " is unchanged: left as it is") -%}
    {%- endif -%}
    {%- do persist_docs(target, model) -%}
    {%- do adapter.commit() -%}
    {{ return({'relations': [target]}) }}
{%- endmaterialization -%}
