{#- Data tests folded into one query per model (docs/dbt.md, "Tests"): the generic test
    column_checks (tests/generic/checks.sql) runs every column check of a model in one node, and
    its failure names each check that failed, the column and an example. dbt's own test
    materialization reports only "Got N results", so these tests have their own (below). -#}

{#- dbt's test materialization, and for column_checks one that names what failed: one query on a
    pass (how many checks failed, as dbt's); on a failure the checks' rows are read again and
    the test errors with them, e.g. "column checks failed: amount not_null: 1 row (e.g.
    5b0c...@16781568)". Every other test runs dbt's own materialization unchanged. It was
    written against these installed test materializations (package, version, file, sha256 of the
    block); scripts/dbt/materialization.py --check (scripts/test.d/20-lint.sh) fails when one
    changes, and says what to re-check:
    upstream dbt-adapters 1.24.5 dbt/include/global_project/macros/materializations/tests/test.sql 4683bd327eafd1708cfeba76b9e79cf098415d37142103b9a759d68682db5ba8
    upstream dbt-snowflake 1.11.6 dbt/include/snowflake/macros/materializations/test.sql a3210d472381caac5089c2320be097fe6cd48dc3eae043790025a87550631307
-#}
{%- materialization test, default -%}
    {%- if (model.get('test_metadata') or {}).get('name') != 'column_checks' -%}
        {{ return(dbt.materialization_test_default()) }}
    {%- endif -%}
    {%- call statement('main', fetch_result=True) -%}
        {{ get_test_sql(sql, config.get('fail_calc'), config.get('warn_if'), config.get('error_if'), limit=none) }}
    {%- endcall -%}
    {%- set outcome = load_result('main')['table'].rows[0] -%}
    {%- set should_warn, should_error = outcome[1] in (true, 1, 'true'), outcome[2] in (true, 1, 'true') -%}
    {%- if should_warn or should_error -%}
        {%- set failed = [] -%}
        {%- for row in run_query(sql).rows -%}
            {%- do failed.append(row[0] ~ ' ' ~ row[1] ~ ': ' ~ row[2] ~ (' row' if row[2] == 1 else ' rows')
                ~ ('' if row[3] is none else ' (e.g. ' ~ row[3] ~ ')')) -%}
        {%- endfor -%}
        {%- set message = 'column checks failed: ' ~ failed | join('; ') -%}
        {%- if should_error -%}
            {%- do exceptions.raise_database_error(message) -%}
        {%- endif -%}
        {%- do exceptions.warn(message) -%}
    {%- endif -%}
    {{ return({'relations': []}) }}
{%- endmaterialization -%}

{#- One row per failed check of model: column_name, check_name, failing_rows and an example
    (the key column's value of a row failing not_null, else the failing value itself). columns maps each
    column to its checks: not_null, unique, {accepted_values: [...]}, {relationships: {to: ...,
    field: ...}}, and on an SCD2 history's entity key one_current_version (exactly one current
    version per key) and windows_run_forwards (no window runs backwards, each closes exactly when
    the key's next version by lsn opens, validity never starts before the version before it).
    One scan of model computes the counting checks; unique and one_current_version group,
    windows_run_forwards orders each key's versions, relationships look values up in the parent. -#}
{% macro column_checks_sql(model, columns, key=none) -%}
{%- set counted = [] -%}
{%- set grouped = [] -%}
{%- for column, checks in columns.items() -%}
    {%- for check in checks -%}
        {%- set name = check if check is string else (check.keys() | list)[0] -%}
        {%- set arg = none if check is string else check[name] -%}
        {%- set example = key or column -%}
        {%- if name == 'not_null' -%}
            {%- do counted.append((column, name, column ~ ' is null', example if key else none)) -%}
        {%- elif name == 'accepted_values' -%}
            {%- set quoted_values = [] -%}
            {%- for v in arg -%}{%- do quoted_values.append("'" ~ (v | replace("'", "''")) ~ "'") -%}{%- endfor -%}
            {%- do counted.append((column, name, column ~ ' not in (' ~ quoted_values | join(', ') ~ ')', column)) -%}
        {%- elif name in ('unique', 'relationships', 'one_current_version', 'windows_run_forwards') -%}
            {%- do grouped.append((column, name, arg)) -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error("column_checks: unknown check " ~ name ~ " on " ~ column) }}
        {%- endif -%}
    {%- endfor -%}
{%- endfor -%}
with tested as (
    select * from {{ model }}
)
{%- if counted %},

counts as (
    select
    {%- for column, name, failing, example in counted %}
        sum(case when {{ failing }} then 1 else 0 end) as failing_{{ loop.index }},
        min(case when {{ failing }} then cast({{ example or "null" }} as varchar) end) as example_{{ loop.index }}{{ ',' if not loop.last }}
    {%- endfor %}
    from tested
)
{%- endif %}

select column_name, check_name, failing_rows, example from (
    select cast(null as varchar) as column_name, cast(null as varchar) as check_name, 0 as failing_rows,
        cast(null as varchar) as example
{%- for column, name, failing, example in counted %}
    union all
    select '{{ column }}', '{{ name }}', failing_{{ loop.index }}, example_{{ loop.index }}
    from counts
{%- endfor %}
{%- for column, name, arg in grouped %}
    union all
    {%- if name == 'unique' %}
    select '{{ column }}', 'unique', sum(copies) - count(*), min(value)
    from (
        select cast({{ column }} as varchar) as value, count(*) as copies
        from tested
        where {{ column }} is not null
        group by {{ column }}
        having count(*) > 1
    ) as duplicates
    {%- elif name == 'one_current_version' %}
    select '{{ column }}', 'one_current_version', count(*), min(value)
    from (
        select cast({{ column }} as varchar) as value
        from tested
        group by {{ column }}
        having sum(case when is_current then 1 else 0 end) <> 1
    ) as not_one
    {%- elif name == 'windows_run_forwards' %}
    select '{{ column }}', 'windows_run_forwards', count(*), min(cast({{ column }} as varchar) || '@' || cast(lsn as varchar))
    from (
        select {{ column }}, lsn, valid_from, valid_to,
            lead(valid_from) over (partition by {{ column }} order by lsn) as next_from
        from tested
    ) as ordered
    where valid_to < valid_from or next_from < valid_from or valid_to is distinct from next_from
    {%- else %}
    select '{{ column }}', 'relationships to {{ arg.to.identifier if arg.to.identifier is defined else arg.to }}.{{ arg.field }}',
        count(*), min(cast(child.{{ column }} as varchar))
    from tested as child
    where child.{{ column }} is not null
        and not exists (select 1 from {{ arg.to }} as parent where parent.{{ arg.field }} = child.{{ column }})
    {%- endif %}
{%- endfor %}
) as checks
where failing_rows > 0
{%- endmacro %}

{#- The rows of relation a cut-scoped test checks (docs/dbt.md, "Relationships within the cut"):
    those within the cut this build computed (silver.build_cut, P), a streamed row when its
    transaction's END is at or below P, a snapshot read (or inferred delete) when its position
    is, so a row the cut has not reached yet (a table loaded ahead of another) is never a
    failure; and of them, those not checked by the build that published gold.cut (P0, published
    at B0): every row written since that build began (_built_at >= B0) and every row that entered
    the cut above P0 (its END, or a read's position, above P0), however long ago it was written.
    A full check (--vars '{test_all_rows: true}') takes every row within P. -#}
{% macro rows_in_cut(relation) -%}
    {%- set cut = cut_lsn() -%}
    {%- set published_lsn, built_from = -1, none -%}
    {%- set published = load_relation(published_cut()) -%}
    {%- if published is not none and not var('test_all_rows', false) -%}
        {%- set found = run_query("select lsn, cast(built_at as varchar) from " ~ published).rows -%}
        {%- if found | length > 0 and found[0][0] is not none -%}
            {%- set published_lsn, built_from = found[0][0], found[0][1] -%}
        {%- endif -%}
    {%- endif -%}
    {%- set rows = relation -%}
    {%- if built_from is none -%}
        {#- nothing published yet: every row within the cut -#}
        {%- set recent, from_lsn, ends_from = 'true', -1, -1 -%}
    {%- else -%}
        {%- set written = "_built_at >= cast('" ~ built_from ~ "' as " ~ instant_type() ~ ")" -%}
        {%- set recent = "t." ~ written -%}
        {#- a row whose END is above P0 sits at or above its transaction's BEGIN -#}
        {%- set from_lsn = first_begin_lsn(published_lsn, cut) if cut > published_lsn else cut + 1 -%}
        {%- set oldest = run_query("select min(lsn) from " ~ relation ~ " as t where " ~ recent).columns[0].values()[0] -%}
        {%- set ends_from = ([from_lsn, oldest] | reject('none') | min) - 1 -%}
        {#- the two kinds of rows read, each bounded by one column (an `or` of the two is not a
            bound the warehouse can skip blocks with: it read the whole table) -#}
        {%- set rows = "(select * from " ~ relation ~ " where " ~ written ~ " union all select * from " ~ relation
            ~ " where not (" ~ written ~ ") and lsn >= " ~ from_lsn ~ ")" -%}
    {%- endif -%}
    {%- set position = "case when " ~ streamed('t.') ~ " then e.end_lsn else t.lsn end" -%}
    {{- return("(select t.* from " ~ rows ~ " as t "
        ~ join_transaction_ends(ends_from, cut, 't')
        ~ " where (" ~ recent ~ " or t.lsn >= " ~ from_lsn ~ ")"
        ~ " and " ~ position ~ " <= " ~ cut
        ~ " and (" ~ recent ~ " or " ~ position ~ " > " ~ published_lsn ~ ")) dbt_subquery") -}}
{%- endmacro %}
