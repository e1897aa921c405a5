{#- The filter an incremental model puts on its input: rows loaded after the newest _loaded_at
    it already holds, minus var('lookback_minutes'). Locally loads take turns and dbt reads a snapshot
    of RAW taken between two loads, so every later load's _loaded_at is later than every row dbt
    saw, and 0 is exact; where loads run concurrently the lookback covers loads that commit
    out of order. Re-reading a row is harmless because every incremental model is keyed;
    skipping one would lose it.
    The watermark is read first and written into the query as a constant, so the warehouse can
    skip whole blocks of older rows (DuckDB row-group zone maps, Snowflake partition pruning)
    instead of reading every row image to compare it with a subquery. -#}
{% macro loaded_since_last_run(loaded_at_column='_loaded_at') -%}
    {%- if is_incremental() and execute -%}
        {#- read once per node: a model's macros ask for it up to three times while it compiles -#}
        {%- set memo = model.setdefault('fin_watermarks', {}) -%}
        {%- if this | string not in memo -%}
            {%- set found = run_query("select cast(max(_loaded_at) as varchar) from " ~ this) -%}
            {%- do memo.update({this | string: found.columns[0].values()[0] if found.rows | length > 0 else none}) -%}
        {%- endif -%}
        {%- set watermark = memo[this | string] -%}
        {%- if watermark is none -%}
    true
        {%- else -%}
    {{ loaded_at_column }} > cast('{{ watermark }}' as {{ instant_type() }}) - interval '{{ var("lookback_minutes") | int }} minutes'
        {%- endif -%}
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- When this dbt invocation started, as a constant: every row an incremental model writes in a
    run carries it in _built_at, so tests can check just what the run wrote (see
    get_where_subquery) and downstream models can find it. Incremental and full-refresh builds
    differ only in this column. -#}
{% macro built_at() -%}
    cast('{{ run_started_at.isoformat() }}' as {{ instant_type() }})
{%- endmacro %}

{#- The newest _built_at in relation as a constant condition on column (op: '=' or '>'; true
    for '>' and false for '=' when the relation has no row), read first: a scalar subquery in a
    filter read every row of the relation twice, while a constant lets the warehouse skip every
    block built before (rows are appended build by build). Compared as microseconds, exact on
    both warehouses (Snowflake's text form of a timestamp keeps milliseconds). -#}
{% macro built_at_condition(relation, op, column='_built_at') -%}
    {%- if execute -%}
        {%- set us = run_query("select " ~ us_from_instant("max(_built_at)") ~ " from " ~ relation).columns[0].values()[0] -%}
        {%- if us is not none -%}
            {{- return(column ~ " " ~ op ~ " " ~ instant_from_us(us | int)) -}}
        {%- endif -%}
    {%- endif -%}
    {{- return('true' if op == '>' else 'false') -}}
{%- endmacro %}

{#- Generic tests check the rows the latest run wrote (the newest _built_at) on incremental models
    (each writes _built_at) and whole relations otherwise: every row was checked in the run that wrote
    it, and keys are unique by construction (each incremental model upserts on its key), so
    re-reading a million old rows per test would only slow every scheduled build. A full refresh
    writes every row, so it tests every row; so does --vars '{test_all_rows: true}'. A test's own
    `where` config still applies. -#}
{% macro get_where_subquery(relation) -%}
    {#- a column_checks test with scope 'cut' checks the rows within the build's cut instead
        (macros/checks.sql; model is the test node here) -#}
    {%- if execute and relation.identifier is not none
        and (model.get('test_metadata') or {}).get('kwargs', {}).get('scope') == 'cut' -%}
        {%- do return(rows_in_cut(relation)) -%}
    {%- endif -%}
    {%- set where = config.get('where', '') -%}
    {%- set scoped = not var('test_all_rows', false) and execute and relation.identifier is not none
        and is_incremental_model(relation) -%}
    {%- if scoped -%}
        {#- the newest _built_at read first as a constant lets DuckDB skip old row groups; a
            command that only compiles (docs generate, compile) may run before the relation
            exists, so it keeps the subquery -#}
        {%- set latest = built_at_condition(relation, '=') if flags.WHICH in ('build', 'test', 'retry')
            else "_built_at = (select max(_built_at) from " ~ relation ~ ")" -%}
        {%- set where = latest ~ (" and (" ~ where ~ ")" if where else "") -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return("(select * from " ~ relation ~ " where " ~ where ~ ") dbt_subquery") -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- Whether relation is one of this project's incremental models, from the manifest rather than
    the warehouse's catalog (a catalog query per test was a fixed cost of every build), found by
    its unique id rather than by a loop over every node (per test, in Jinja). A model with an
    alias is not found, and its tests then read the whole relation. -#}
{% macro is_incremental_model(relation) -%}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ (relation.identifier | lower)) -%}
    {%- do return(node is not none and node.config.materialized == 'incremental'
        and (node.alias or node.name) | lower == relation.identifier | lower
        and node.schema | lower == (relation.schema or '') | lower) -%}
{%- endmacro %}

{#- Incremental strategy of the histories (and of fct_postings, whose rows are only ever replaced
    from an earlier or the same lsn): the batch holds, for each key it touches, every version
    from some lsn on, so the target's rows of that key from that lsn on are replaced by the
    batch, in one transaction (a version a late event absorbed disappears; an upsert on
    version_key would keep it). config history_key names the key column. The batch's least lsn
    bounds the statements, so they read the recent blocks of the history, not all of it: read
    first and written in as a constant, since DuckDB evaluates a scalar subquery as a join after
    scanning every row (the delete read the whole history; the batch is a table already).
    config history_closing names the columns by which a kept row can differ from the batch's
    (valid_to, is_current: a version closed by a later one). A row the batch holds the same but
    for them is updated in place (and its _built_at, as if rewritten) rather than deleted and
    inserted again: each build closes most touched keys' current versions, and deleted rows in
    the recent row groups made DuckDB's vacuum at checkpoint merge the last three or four row
    groups of the table whole, build after build while they did not fill (docs/dbt.md, What
    grows with history); an update rewrites only those columns of the row groups it touches. -#}
{% macro get_incremental_history_range_sql(arg_dict) -%}
    {%- set key = config.require('history_key') -%}
    {%- set closing = config.get('history_closing', []) -%}
    {%- set target, batch = arg_dict['target_relation'], arg_dict['temp_relation'] -%}
    {%- set names = arg_dict['dest_columns'] | map(attribute='name') | list -%}
    {%- set columns = get_quoted_csv(names) -%}
    {%- set least = run_query("select min(lsn) from " ~ batch).columns[0].values()[0] -%}
    {%- set least = least if least is not none else 'null' -%}
    {%- set ukey = arg_dict['unique_key'] -%}
    {%- set updated = columns_named(names, closing + ['_built_at']) if closing else [] -%}
    {%- set dml -%}
    delete from {{ target }} as t
    using (select {{ key }}, min(lsn) as from_lsn from {{ batch }} group by {{ key }}) as b
    where t.{{ key }} = b.{{ key }} and t.lsn >= b.from_lsn
        -- implied by the line above, and a bound the warehouse can skip older blocks with
        and t.lsn >= {{ least }}
        {%- if closing %}
        -- kept: the batch's row but for the closing columns
        and not exists (
            select 1 from {{ batch }} as n
            where n.{{ ukey }} = t.{{ ukey }} and n.lsn = t.lsn
            {%- for name in names if name not in updated %}
                and n.{{ adapter.quote(name) }} is not distinct from t.{{ adapter.quote(name) }}
            {%- endfor %})
        {%- endif %};
    {%- if closing %}
    update {{ target }} as t
    set {% for name in updated %}{{ adapter.quote(name) }} = n.{{ adapter.quote(name) }}{{ ', ' if not loop.last }}{% endfor %}
    from {{ batch }} as n
    where t.{{ ukey }} = n.{{ ukey }} and t.lsn = n.lsn and t.lsn >= {{ least }};
    {%- endif %}
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ batch }} as n
    {%- if closing %}
    where not exists (
        select 1 from {{ target }} as t
        where t.{{ ukey }} = n.{{ ukey }} and t.lsn = n.lsn and t.lsn >= {{ least }})
    {%- endif %}
    {%- endset -%}
    {{ return(dml_in_transaction(dml)) }}
{%- endmacro %}

{#- Incremental strategy of fct_daily_account_balances: the batch rewrites some keys (config
    replace_key) each from some value of the column replace_from on, and names each key with the
    value it is rewritten from by a row whose unique key is null (so a key that no longer has a
    row there, after an account's delete, is named too). The target's rows of each key from that
    value on become the batch's, in one transaction: those the batch no longer holds are deleted,
    the others changed in place (rows_in_place), so a row the batch holds unchanged is not
    written at all. The unique key must determine replace_key and replace_from (account_day_key
    is account_id@balance_date), so a row keeps its key's values. The batch's least value, read
    first as a constant, bounds every statement, so they read the recent blocks.
    Why not delete and insert: each build rewrites the last day of every account touched (about
    9,300 of 20,000 a load in the benchmark), and those deletes in the table's last row groups
    made DuckDB's vacuum merge its last three or four row groups whole, build after build (as the
    histories' did: docs/dbt.md, What grows with history); updated in place, no row moves. -#}
{% macro get_incremental_replace_from_sql(arg_dict) -%}
    {%- set column = config.require('replace_from') -%}
    {%- set key = config.require('replace_key') -%}
    {%- set ukey = arg_dict['unique_key'] -%}
    {%- set target, batch = arg_dict['target_relation'], arg_dict['temp_relation'] -%}
    {%- set names = arg_dict['dest_columns'] | map(attribute='name') | list -%}
    {%- set least = run_query("select cast(min(" ~ column ~ ") as varchar) from " ~ batch).columns[0].values()[0] -%}
    {%- if least is none -%}
        {#- nothing rewritten; a statement that changes nothing -#}
        {{ return("delete from " ~ target ~ " where false") }}
    {%- endif -%}
    {%- set bound = column ~ " >= '" ~ least ~ "'" -%}
    {%- set dml -%}
    -- the rows gone: the named keys' rows from their value on that the batch does not hold
    delete from {{ target }} as t
    using (select {{ key }}, min({{ column }}) as from_value from {{ batch }} group by {{ key }}) as b
    where t.{{ key }} = b.{{ key }} and t.{{ column }} >= b.from_value
        -- implied by the line above, and a bound the warehouse can skip older blocks with
        and t.{{ bound }}
        and not exists (select 1 from {{ batch }} as n where n.{{ ukey }} = t.{{ ukey }});
    {{ rows_in_place(target, batch, ukey, names, [key, column], bound) }}
    {%- endset -%}
    {{ return(dml_in_transaction(dml)) }}
{%- endmacro %}

{#- The statements that make target's rows of the batch's keys (unique key ukey) the batch's (a
    batch row whose key is null names a key and is not written): a row held under a key of the
    batch is updated in place, only when some column but _built_at differs (then _built_at too,
    as if rewritten); a key not held is inserted. Columns in fixed are determined by the key, so
    equal on a matched row, and left alone. bound is a condition on the target's columns that
    every row of the batch meets, written in so the warehouse skips the blocks below it: the
    comparison reads every column of the rows it scans, so an unbounded one would read the whole
    table (why the keyed upserts by a random key, such as fct_transactions', still delete and
    insert: their delete reads the key column only). -#}
{% macro rows_in_place(target, batch, ukey, names, fixed, bound) -%}
    {%- set kept = columns_named(names, [ukey] + fixed) -%}
    {%- set changing = names | reject('in', kept) | list -%}
    {%- set compared = changing | reject('in', columns_named(names, ['_built_at'])) | list -%}
    {%- set matched = "t." ~ ukey ~ " = n." ~ ukey ~ " and t." ~ bound -%}
    update {{ target }} as t
    set {% for name in changing %}{{ adapter.quote(name) }} = n.{{ adapter.quote(name) }}{{ ', ' if not loop.last }}{% endfor %}
    from {{ batch }} as n
    where {{ matched }}
        and ({% for name in compared %}n.{{ adapter.quote(name) }} is distinct from t.{{ adapter.quote(name) }}{{ ' or ' if not loop.last }}{% endfor %});
    insert into {{ target }} ({{ get_quoted_csv(names) }})
    select {{ get_quoted_csv(names) }} from {{ batch }} as n
    where n.{{ ukey }} is not null
        and not exists (select 1 from {{ target }} as t where {{ matched }})
{%- endmacro %}

{#- The names among names (a relation's columns, as its catalog spells them: upper case on
    Snowflake) of the columns wanted names (as a model's config spells them): to be quoted, a
    column has to be spelled as stored, since Snowflake compares quoted names case-sensitively
    ("valid_to" is not VALID_TO), where DuckDB and fakesnow do not. -#}
{% macro columns_named(names, wanted) -%}
    {%- set wanted = wanted | map('lower') | list -%}
    {%- set found = [] -%}
    {%- for name in names if name | lower in wanted -%}
        {%- do found.append(name) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{#- Incremental strategy of cut_marks: the batch is the model's whole new content (its own small
    state carried forward with the rows loaded since), so it replaces every row. -#}
{% macro get_incremental_replace_all_sql(arg_dict) -%}
    {%- set target, batch = arg_dict['target_relation'], arg_dict['temp_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set dml -%}
    delete from {{ target }};
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ batch }}
    {%- endset -%}
    {{ return(dml_in_transaction(dml)) }}
{%- endmacro %}

{#- A delete and an insert as one transaction: dbt-duckdb runs a model's statements in one
    already; on Snowflake each statement commits on its own unless wrapped, as dbt-snowflake
    wraps its own delete+insert. -#}
{% macro dml_in_transaction(dml) -%}
    {{ return(adapter.dispatch('dml_in_transaction')(dml)) }}
{%- endmacro %}
{% macro default__dml_in_transaction(dml) -%}{{ return(dml) }}{%- endmacro %}
{% macro snowflake__dml_in_transaction(dml) -%}{{ return(explicit_transaction(dml)) }}{%- endmacro %}
