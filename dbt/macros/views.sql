{#- DuckDB only: a view whose definition has not changed is left as it is. dbt's view
    materialization recreates every selected view on every build (create a new view, rename the
    old one away and the new one in, write its comments again, drop the old one, commit: nine
    statements, and a node that costs about as much as an incremental model's), although the
    gold views (dim_customers, dim_accounts) only change when the project does. Here the
    compiled SQL is bound as a temporary view first; when DuckDB's own text of it equals that of
    the view held (both as DuckDB normalises them, less the CREATE ... AS before the query), the
    view stays and only its comments are compared (persist_docs writes those that differ).
    Anything else (no view yet, a table there, a changed definition, hooks, grants, a contract, a
    SQL header) is dbt's own materialization, unchanged. Snowflake keeps dbt-snowflake's.
    It was written against these installed view materializations (package, version, file,
    sha256 of the block); scripts/dbt/materialization.py --check (scripts/test.d/20-lint.sh)
    fails when one changes:
    upstream dbt-adapters 1.24.5 dbt/include/global_project/macros/materializations/models/view.sql e5e020732cff4f18aba80e75aa216e569a082f77d1f602d4eafa73fa07e6d9fb
    upstream dbt-snowflake 1.11.6 dbt/include/snowflake/macros/materializations/view.sql cdcbc4a377c5f998ff843eaead59a5ac39206d9cffb56ec508a405722e073ac4
-#}
{%- materialization view, adapter='duckdb' -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- if existing is none or not existing.is_view or pre_hooks or post_hooks or config.get('grants')
        or config.get('sql_header') or (model.get('contract') or {}).get('enforced') or should_full_refresh() -%}
        {{ return(dbt.materialization_view_default()) }}
    {%- endif -%}
    {%- set target = this.incorporate(type='view') -%}
    {%- set probe = target.identifier ~ '__dbt_probe' -%}
    {#- the text after the first ' AS ' is the query: DuckDB writes CREATE [TEMP] VIEW <name> AS <query>; -#}
    {#- dbt requires a model's statement 'main': here the probe; dbt's own runs 'main' again -#}
    {%- call statement('main', fetch_result=True) -%}
        create or replace temp view {{ adapter.quote(probe) }} as (
            {{ sql }}
        );
        select count(*) from duckdb_views() as held join duckdb_views() as probe
            on probe.temporary and probe.view_name = {{ duckdb_catalog_literal(probe) }}
        where not held.temporary
            and lower(held.database_name) = {{ duckdb_catalog_literal(target.database | lower) }}
            and lower(held.schema_name) = {{ duckdb_catalog_literal(target.schema | lower) }}
            and lower(held.view_name) = {{ duckdb_catalog_literal(target.identifier | lower) }}
            and substr(held.sql, strpos(held.sql, ' AS ') + 4) = substr(probe.sql, strpos(probe.sql, ' AS ') + 4)
    {%- endcall -%}
    {%- set same = load_result('main')['table'].columns[0].values()[0] == 1 -%}
    {%- if not same -%}
        {{ return(dbt.materialization_view_default()) }}
    {%- endif -%}
    {%- do log("View " ~ target ~ " is unchanged: left as it is") -%}
    {%- do persist_docs(target, model) -%}
    {%- do adapter.commit() -%}
    {{ return({'relations': [target]}) }}
{%- endmaterialization -%}
