{#- An entity's own columns in its dimension (silver.*_in_cut and the gold.dim_* view over it), in
    order: what the history holds of the row but its version, which dimension_validity_columns
    carry, and what a dimension derives from it (is_closed, which customers_in_cut computes). -#}
{% macro dimension_columns(table) -%}
    {%- set columns = {
        'customers': ['customer_id', 'first_name', 'last_name', 'email', 'address_line', 'city',
            'postal_code', 'country', 'closed_at', 'is_closed', 'created_at', 'updated_at'],
        'accounts': ['account_id', 'customer_id', 'account_type', 'currency', 'nickname', 'balance',
            'status', 'created_at', 'updated_at'],
    } -%}
    {{ columns[table] | join(', ') }}
{%- endmacro %}

{#- The columns every SCD2 dimension ends with: a history's validity under the names BI tools
    know from dbt snapshots, then where the version sits in the log. -#}
{% macro dimension_validity_columns() -%}
    version,
    is_deleted,
    valid_from as effective_from,
    valid_to as effective_to,
    is_current,
    lsn,
    tx_id,
    -- where the version entered gold (its transaction's END, a read's own position)
    end_lsn,
    _loaded_at,
    {{ built_at() }} as _built_at
{%- endmacro %}

{#- dimension_validity_columns as the published_versions of a *_in_cut table carry them. -#}
{% macro published_validity_columns() -%}
    version, is_deleted, effective_from, effective_to, is_current, lsn, tx_id, end_lsn, _loaded_at, _built_at
{%- endmacro %}

{#- Where versions may start entering a *_in_cut table in this build: above the newest end_lsn it
    holds or, when higher, the published cut (gold.cut). A build publishes only after it built
    this table to its cut, so a version at or below gold.cut is held here unless the history
    wrote it since (touched anyway). For a table whose entity rarely changes (customers) the
    newest end_lsn held can be far behind the cut; the ENDs above it need not be read again. -#}
{% macro entered_below(held) -%}
    {%- set pub = published_cut() -%}
    {%- if execute and load_relation(pub) is not none -%}
        {%- set found = run_query("select max(lsn) from " ~ pub).columns[0].values()[0] -%}
        {{- return([held, found] | max if found is not none else held) -}}
    {%- endif -%}
    {{- return(held) -}}
{%- endmacro %}

{#- The versions of a history within the cut, for a *_in_cut table built incrementally (docs/dbt.md,
    "Gold is a consistent cut"): what history_in_cut gives, but a build rewrites each touched key
    only from the first of its rows that can differ, and replaces those (strategy history_range
    on the key). Touched: every key the history wrote since (_built_at), every key with a
    streamed version whose END is above entered_below and at or below the cut, every key with a
    read in that range. Each is rewritten from its current row here (whose validity
    ends when a version enters), or, when the history rewrote it at or below that row (a late
    event, a recomputed snapshot), from the held row before the rewrite; from its first version
    when none is held there. A row kept as it was is the same event, so it keeps its end_lsn; the
    others look their END up among the ENDs above the least position rewritten (an END sits
    above its transaction's events), which also bounds the reads of the history and this table. -#}
{% macro dimension_in_cut(history, key, version_key) -%}
{%- if not is_incremental() -%}
{{ history_in_cut(history, key) }}
{%- else -%}
{%- set cut = cut_lsn() -%}
{%- set below = entered_below(own_max('end_lsn', -1)) -%}
{%- set since = none -%}
{%- if execute -%}
    {%- set since = run_query("select cast(max(_built_at) as varchar) from " ~ this).columns[0].values()[0] -%}
{%- endif -%}
{%- set starts -%}
written as (
    -- per key the history wrote since: where its rewrite starts and the valid_from there
    select {{ key }}, min(lsn) as written_from, min_by(valid_from, lsn) as written_valid_from
    from {{ history }}
    where {% if since is none %}true{% else %}_built_at > cast('{{ since }}' as {{ instant_type() }}){% endif %}
    group by {{ key }}
),

touched as (
    select {{ key }} from written
    union
    select h.{{ key }} from {{ history }} as h
    inner join ({{ transaction_ends(below, cut) }}) as e
        on h.tx_id = e.tx_id and date_trunc('millisecond', h.committed_at) = e.committed_ms
    where {{ streamed('h.') }} and h.lsn >= {{ first_begin_lsn(below, cut) }}
    union
    select {{ key }} from {{ history }} as h
    where not {{ streamed('h.') }} and h.lsn > {{ below }} and h.lsn <= {{ cut }}
),

-- each key's last row here (one per key held; found through is_current, a column scan)
current_row as (
    select {{ key }}, lsn, effective_from from {{ this }} where is_current
),

-- keys the history rewrote at or below their current row, but for that row's own validity
rewound as (
    select w.{{ key }}, w.written_from
    from written as w
    inner join current_row as c on w.{{ key }} = c.{{ key }}
    where w.written_from < c.lsn
        or (w.written_from = c.lsn and w.written_valid_from is distinct from c.effective_from)
),

-- for them, the row held before the rewrite (an empty set ends the join before it reads)
rewound_from as (
    select d.{{ key }}, max(d.lsn) as lsn
    from {{ this }} as d
    inner join rewound as r on d.{{ key }} = r.{{ key }} and d.lsn < r.written_from
    group by d.{{ key }}
),

-- where each touched key is rewritten from (null: from its first version)
starts as (
    select t.{{ key }}, case when r.{{ key }} is null then c.lsn else f.lsn end as from_lsn
    from touched as t
    left join current_row as c on t.{{ key }} = c.{{ key }}
    left join rewound as r on t.{{ key }} = r.{{ key }}
    left join rewound_from as f on t.{{ key }} = f.{{ key }}
)
{%- endset -%}
{#- starts is read by the two constants below and by the batch: computed once where it can be -#}
{%- set kept = computed_once(this.identifier ~ '__starts', 'with ' ~ starts ~ ' select * from starts') -%}
{%- if kept is not none -%}
    {%- set starts = 'starts as (select * from ' ~ kept ~ ')' -%}
{%- endif -%}
{#- The least position rewritten, as a constant: a key rewritten from its first version counts
    with that version's position (only such keys' versions are looked up by key alone). -#}
{%- set lower = cut -%}
{%- if execute -%}
    {%- set found = run_query("with " ~ starts ~ " select min(lsn) from (select from_lsn as lsn from starts union all"
        ~ " select h.lsn from " ~ history ~ " as h inner join starts as s on h." ~ key ~ " = s." ~ key
        ~ " where s.from_lsn is null) as rewritten").columns[0].values()[0] -%}
    {%- set lower = found if found is not none else cut -%}
{%- endif %}
{%- set rewritten -%}
{{ starts }},

held as (
    select {{ version_key }} as version_key, end_lsn
    from {{ this }}
    where lsn >= {{ lower }} and {{ key }} in (select {{ key }} from starts)
),

-- the versions rewritten, with the end_lsn held for them (null: a version not held here, or
-- not yet in the cut)
rewritten as (
    select h.*, d.end_lsn as held_end_lsn
    from {{ history }} as h
    inner join starts as s on h.{{ key }} = s.{{ key }} and h.lsn >= coalesce(s.from_lsn, -1)
    left join held as d on h.version_key = d.version_key
    where h.lsn >= {{ lower }}
)
{%- endset -%}
{#- Only the streamed versions without a held end_lsn look their END up, and an END sits above
    its transaction's events: the ENDs are read from the least of their positions, a constant
    read first. From lower, a key rewritten from its first version (a customer that never
    changed since the first snapshot) made every build read every END of the log. -#}
{%- set ends_from = cut -%}
{%- if execute -%}
    {%- set found = run_query("with " ~ rewritten ~ " select min(lsn) from rewritten where held_end_lsn is null and "
        ~ streamed()).columns[0].values()[0] -%}
    {%- set ends_from = found - 1 if found is not none else cut -%}
{%- endif %}
with {{ rewritten }},

marked as (
    select h.* exclude (held_end_lsn),
        case when {{ streamed('h.') }} then coalesce(h.held_end_lsn, e.end_lsn) is not null else h.lsn <= {{ cut }} end as in_cut,
        -- where the version entered gold (its transaction's END, a read's own position)
        case when {{ streamed('h.') }} then coalesce(h.held_end_lsn, e.end_lsn) else h.lsn end as end_lsn
    from rewritten as h
    {{ join_transaction_ends(ends_from, cut, 'h') }}
),

{{ cut_prefix(key) }}
{%- endif -%}
{%- endmacro %}

{#- The versions of silver.accounts_in_cut (within the computed cut, with where each entered gold) under
    the history's names. An account's versions have distinct positions, so lsn orders a day's. -#}
{% macro dim_versions() -%}
    select account_id, effective_from as valid_from, effective_to as valid_to, balance, currency, status,
        is_deleted, lsn, end_lsn, _loaded_at
    from {{ ref('accounts_in_cut') }}
{%- endmacro %}

{#- A dimension's versions as readers see them: those of versions (a *_in_cut table, built to the
    cut the build computed) within the published cut, gold.cut (macros/publish.sql), with
    effective_to and is_current recomputed so the last one published is current. A key's versions
    in the cut are a prefix: one enters gold no earlier than any before it, hence the running max
    of end_lsn. A column filter and a window per read, no join with the transactions' ENDs. -#}
{% macro published_versions(versions, key) -%}
with entered as (
    select v.*,
        max(v.end_lsn) over (partition by v.{{ key }} order by v.lsn rows between unbounded preceding and current row) as entered_lsn
    from {{ versions }} as v
),

published as (
    select * from entered where entered_lsn <= (select max(lsn) from {{ published_cut() }})
)

select published.* exclude (effective_to, is_current, entered_lsn),
    lead(effective_from) over (partition by {{ key }} order by lsn) as effective_to,
    lead(effective_from) over (partition by {{ key }} order by lsn) is null as is_current
from published
{%- endmacro %}

{#- A relation holding the rows of query, computed once for the rest of this node (the node's
    connection), or none where the query is to stay inline: on DuckDB a temporary table, which
    ends with the connection at the node's end. Elsewhere inline: a Snowflake temporary table
    would do too, but fakesnow, which tests the Snowflake SQL, refuses them (macros/cross_db.sql). -#}
{% macro computed_once(name, query) -%}
    {{ return(adapter.dispatch('computed_once')(name, query)) }}
{%- endmacro %}
{% macro default__computed_once(name, query) -%}{{ return(none) }}{%- endmacro %}
{% macro duckdb__computed_once(name, query) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set kept = api.Relation.create(identifier=name, type='table') -%}
    {%- do run_query("create or replace temporary table " ~ kept ~ " as " ~ query) -%}
    {{ return(kept) }}
{%- endmacro %}
