{#- The consistent cut's verified progress (docs/dbt.md, "Gold is a consistent cut", Cost), so that
    gold.cut reads what changed, not every transaction-metadata record ever loaded. Two kinds of
    rows:
    - kind 'source', one per Kafka source: run_end, the last offset of its contiguous run from
      offset 0 (its prefix; -1 before offset 0 is loaded), first_end and last_end, its prefix's
      least and greatest END, break_offset, the first offset past the run that holds a record or
      two positions (NULL when all it holds is the run), and the newest _loaded_at seen;
    - kind 'record', the metadata records the cut may still need: every record outside a prefix,
      and every one in a prefix but for an END at or below the previous cut (P, the computed cut
      silver.build_cut, found through the graph: a ref would be a cycle, the cut reads this model) and the BEGIN of such
      an END. Records loaded within the lookback stay, so a re-read finds them.
    A build carries the previous rows forward with the records loaded since (by _loaded_at, like
    every incremental model) and extends each run from run_end. The prefixes never shrink, so a
    record loaded since at or below a run's end is compared with the record held there: the same
    record (a redelivery within the lookback) is absorbed; anything else (a copy of an absorbed
    record, or a second position at an absorbed offset) makes this build recompute from every
    record in RAW, as a full refresh does. RAW is append-only: a record deleted from RAW after a
    build read it stays here until a full refresh. -#}
{#- Downstream of the staged logs too (unused), so every build that selects the cut (a load of
    any table) brings this up to date first. -#}
-- depends_on: {{ ref('stg_customers_changes') }}, {{ ref('stg_accounts_changes') }}, {{ ref('stg_transactions_changes') }}
{{ config(materialized='incremental', schema='silver', incremental_strategy='replace_all', tmp_relation_type=batch_relation_type(), on_schema_change='fail') }}

{%- set metadata = source('raw', 'transaction_metadata') -%}
{%- set lookback = var('lookback_minutes') | int -%}
{%- set fresh -%}
    select {{ key_source('_object_key') }} as source_id, {{ quoted('offset') }} as md_offset, op, tx_id, lsn,
        commit_ts_us, cast({{ json_text(quoted('after'), 'event_count') }} as bigint) as event_count, _loaded_at
    from {{ metadata }}
{%- endset -%}
{%- set cut_prev = -1 -%}
{%- set carry = false -%}
{%- if is_incremental() and execute -%}
    {%- set cut_node = graph.nodes['model.' ~ project_name ~ '.cut'] -%}
    {%- set cut_relation = adapter.get_relation(database=cut_node.database, schema=cut_node.schema, identifier=cut_node.alias) -%}
    {%- if cut_relation is not none -%}
        {%- set found = run_query("select max(lsn) from " ~ cut_relation).columns[0].values() -%}
        {%- set cut_prev = found[0] if found | length > 0 and found[0] is not none else -1 -%}
    {%- endif -%}
    {#- The records loaded since at or below a run's end: none in the usual build, so the
        comparison with the records held (all of them after a full build: two per transaction)
        runs only when there is something to compare. -#}
    {%- set below_runs -%}
        with fresh as ({{ fresh }} where {{ loaded_since_last_run() }})
        select n.*
        from fresh as n
        inner join {{ this }} as k on k.kind = 'source' and n.source_id is not distinct from k.source_id
        where n.md_offset <= k.run_end
    {%- endset -%}
    {%- set overlap -%}
        select count(*)
        from ({{ below_runs }}) as n
        where not exists (
            select 1 from {{ this }} as h
            where h.kind = 'record' and h.source_id is not distinct from n.source_id and h.md_offset = n.md_offset
                and h.lsn = n.lsn and h.op = n.op and h.tx_id is not distinct from n.tx_id
                and h.commit_ts_us is not distinct from n.commit_ts_us and h.event_count is not distinct from n.event_count)
    {%- endset -%}
    {%- set carry = run_query("select count(*) from (" ~ below_runs ~ ") as n").columns[0].values()[0] == 0
        or run_query(overlap).columns[0].values()[0] == 0 -%}
    {#- dropped_held: per source, the offset of the last END of its held prefix at or below the
        previous cut. The capture writes a source's metadata one transaction at a time (its
        BEGIN, then its END) in commit order, so every held record of the prefix up to that
        offset is a passed END or the BEGIN of one, which `kept` below would drop. They are
        dropped before the grouping instead (unless loaded within the lookback), so that the
        build after a full refresh, which passed nothing and so holds every record of a long
        history, does not carry them all through it (10M transactions: 20M records, out of
        memory at 512MB). As constants, not a join: DuckDB misjudges the few source rows and
        would hash every record. -#}
    {%- set ns = namespace(held='false', passed='false') -%}
    {%- if carry -%}
        {%- for r in run_query("select source_id, run_end from " ~ this ~ " where kind = 'source' and run_end >= 0").rows -%}
            {%- set ns.held = ns.held ~ " or (source_id is not distinct from " ~ source_literal(r[0]) ~ " and md_offset <= " ~ r[1] ~ ")" -%}
        {%- endfor -%}
        {%- set dropped_held -%}
            select source_id, max(md_offset) from {{ this }}
            where kind = 'record' and op = 'END' and lsn <= {{ cut_prev }} and ({{ ns.held }})
            group by source_id
        {%- endset -%}
        {%- for r in run_query(dropped_held).rows -%}
            {%- set ns.passed = ns.passed ~ " or (source_id is not distinct from " ~ source_literal(r[0]) ~ " and md_offset <= " ~ r[1] ~ ")" -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set passed_prefix = ns.passed -%}
{%- endif %}

with fresh as (
    {{ fresh }}
    {%- if carry %}
    where {{ loaded_since_last_run() }}
    {%- endif %}
),

known as (
    {%- if carry %}
    select source_id, run_end, first_end, last_end, _loaded_at from {{ this }} where kind = 'source'
    {%- else %}
    select cast(null as varchar) as source_id, cast(null as bigint) as run_end, cast(null as bigint) as first_end,
        cast(null as bigint) as last_end, cast(null as {{ instant_type() }}) as _loaded_at
    where false
    {%- endif %}
),
{%- if carry %}

-- the records held, but for those of each held prefix up to its last END at or below the
-- previous cut (see dropped_held above)
held as (
    select source_id, md_offset, op, tx_id, lsn, commit_ts_us, event_count, _loaded_at
    from {{ this }}
    where kind = 'record' and not coalesce(({{ passed_prefix }}) and not ({{ loaded_since_last_run() }}), false)
),
{%- endif %}

-- the records held and those loaded since, each once (a redelivered copy is the same record)
records as (
    select source_id, md_offset, op, tx_id, lsn, commit_ts_us, event_count, max(_loaded_at) as _loaded_at
    from (
        select source_id, md_offset, op, tx_id, lsn, commit_ts_us, event_count, _loaded_at from fresh
        {%- if carry %}
        union all
        select source_id, md_offset, op, tx_id, lsn, commit_ts_us, event_count, _loaded_at from held
        {%- endif %}
    ) as r
    group by source_id, md_offset, op, tx_id, lsn, commit_ts_us, event_count
),

-- every source, with the end of the run verified before this build
all_sources as (
    select s.source_id, coalesce(max(k.run_end), -1) as held_end
    from (select source_id from records union select source_id from known) as s
    left join known as k on s.source_id is not distinct from k.source_id
    group by s.source_id
),

-- the offsets past each verified run: how many positions each holds, and how far it has
-- drifted from consecutive
beyond as (
    select r.source_id, r.md_offset, count(distinct r.lsn) as positions,
        r.md_offset - max(a.held_end) - row_number() over (partition by r.source_id order by r.md_offset) as drift
    from records as r
    inner join all_sources as a on r.source_id is not distinct from a.source_id
    where r.md_offset > a.held_end
    group by r.source_id, r.md_offset
),

-- per source, the first offset outside its run: missing (drift), or ambiguous (the same source
-- restarting its offsets)
breaks as (
    select source_id, min(md_offset) as md_offset
    from beyond
    where drift <> 0 or positions > 1
    group by source_id
),

runs as (
    select a.source_id,
        coalesce(max(case when b.md_offset is null or y.md_offset < b.md_offset then y.md_offset end), a.held_end) as run_end,
        min(b.md_offset) as break_offset
    from all_sources as a
    left join beyond as y on a.source_id is not distinct from y.source_id
    left join breaks as b on a.source_id is not distinct from b.source_id
    group by a.source_id, a.held_end
),

prefix as (
    select r.*
    from records as r
    inner join runs as u on r.source_id is not distinct from u.source_id
    where r.md_offset <= u.run_end
),

loads as (
    select source_id, max(_loaded_at) as _loaded_at
    from (select source_id, _loaded_at from records union all select source_id, _loaded_at from known) as l
    group by source_id
),

summary as (
    select u.source_id, u.run_end, u.break_offset, min(e.first_end) as first_end, max(e.last_end) as last_end,
        max(l._loaded_at) as _loaded_at
    from runs as u
    left join loads as l on u.source_id is not distinct from l.source_id
    left join (
        select source_id, min(lsn) as first_end, max(lsn) as last_end from prefix where op = 'END' group by source_id
        union all
        select source_id, first_end, last_end from known
    ) as e on u.source_id is not distinct from e.source_id
    group by u.source_id, u.run_end, u.break_offset
),

-- the ENDs of the prefixes the cut has passed: neither they nor their BEGINs are read again
passed as (
    select source_id, md_offset, tx_id, commit_ts_us
    from prefix
    where op = 'END' and lsn <= {{ cut_prev }}
),

kept as (
    select r.*
    from records as r
    where r._loaded_at > (select max(_loaded_at) from summary) - interval '{{ lookback }} minutes'
        or not exists (
            select 1 from passed as e
            where e.source_id is not distinct from r.source_id and e.tx_id = r.tx_id
                and e.commit_ts_us = r.commit_ts_us and r.md_offset <= e.md_offset)
)

select 'record' as kind, source_id, md_offset, op, tx_id, lsn, commit_ts_us, event_count,
    cast(null as bigint) as run_end, cast(null as bigint) as first_end, cast(null as bigint) as last_end,
    cast(null as bigint) as break_offset, _loaded_at
from kept
union all
select 'source' as kind, source_id, cast(null as bigint) as md_offset, cast(null as varchar) as op,
    cast(null as bigint) as tx_id, cast(null as bigint) as lsn, cast(null as bigint) as commit_ts_us,
    cast(null as bigint) as event_count, run_end, first_end, last_end, break_offset, _loaded_at
from summary
