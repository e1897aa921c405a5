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

{#- The versions of a history within the cut, for a *_in_cut table built incrementally (docs/dbt.md,
    "Gold is a consistent cut"): what history_in_cut gives, but a build recomputes only the keys
    whose versions changed or entered the cut since the table's last build, and replaces their
    rows (strategy history_range on the key: the batch holds each such key's versions from its
    first). The keys touched: every key the history wrote since (_built_at), every key with a
    streamed version whose END is above the newest end_lsn held and at or below the cut, every
    key with a read in that range. A version the table already holds keeps its end_lsn (the same
    event, the same END); the others look their END up among the ENDs above the least position of
    them (an END sits above its transaction's events), so no read scans every END. -#}
{% macro dimension_in_cut(history, key, version_key) -%}
{%- if not is_incremental() -%}
{{ history_in_cut(history, key) }}
{%- else -%}
{%- set cut = cut_lsn() -%}
{%- set held = own_max('end_lsn', -1) -%}
{%- set since = none -%}
{%- if execute -%}
    {%- set since = run_query("select cast(max(_built_at) as varchar) from " ~ this).columns[0].values()[0] -%}
{%- endif -%}
{%- set touched -%}
    select {{ key }} from {{ history }}
    where {% if since is none %}true{% else %}_built_at > cast('{{ since }}' as {{ instant_type() }}){% endif %}
    union
    select h.{{ key }} from {{ history }} as h
    inner join ({{ transaction_ends(held, cut) }}) as e
        on h.tx_id = e.tx_id and date_trunc('millisecond', h.committed_at) = e.committed_ms
    where {{ streamed('h.') }} and h.lsn >= {{ first_begin_lsn(held, cut) }}
    union
    select {{ key }} from {{ history }} as h
    where not {{ streamed('h.') }} and h.lsn > {{ held }} and h.lsn <= {{ cut }}
{%- endset -%}
{%- set end_from = cut -%}
{%- if execute -%}
    {%- set found = run_query("select min(h.lsn) from " ~ history ~ " as h where h." ~ key ~ " in (" ~ touched ~ ")"
        ~ " and " ~ streamed('h.') ~ " and not exists (select 1 from " ~ this ~ " as d"
        ~ " where d." ~ version_key ~ " = h.version_key)").columns[0].values()[0] -%}
    {%- set end_from = found - 1 if found is not none else cut -%}
{%- endif %}
with touched as (
    {{ touched }}
),

held as (
    select {{ version_key }} as version_key, end_lsn
    from {{ this }}
    where {{ key }} in (select {{ key }} from touched)
),

marked as (
    select h.*,
        case when {{ streamed('h.') }} then coalesce(d.end_lsn, e.end_lsn) is not null else h.lsn <= {{ cut }} end as in_cut,
        -- where the version entered gold (its transaction's END, a read's own position)
        case when {{ streamed('h.') }} then coalesce(d.end_lsn, e.end_lsn) else h.lsn end as end_lsn
    from {{ history }} as h
    left join held as d on h.version_key = d.version_key
    {{ join_transaction_ends(end_from, cut, 'h') }}
    where h.{{ key }} in (select {{ key }} from touched)
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
