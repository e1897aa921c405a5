{#- The consistent cut: the highest END position P such that every END at or below it is loaded
    and wholly loaded (docs/dbt.md, "Gold is a consistent cut"). One row: lsn (P), commit_ts
    (P's commit time), built_at, and metadata_offset, the Kafka offset of P's END on
    fin.transaction_metadata (bookkeeping: the offsets of one source).
    Gap-free across Kafka sources (a replaced cluster, the local broker after a restart: each
    restarts the metadata topic's offsets at 0; the source is the SourceID in each record's
    _object_key). The topic (one partition, no tombstones) holds, per source, every BEGIN and
    END in commit order at consecutive offsets. The capture confirms the slot past an END only
    once that END and every earlier record of its source are landed (the landed gate acks a
    contiguous prefix), and a new source streams again from the slot's confirmed position C. So
    every END below C is in an older source's run from its offset 0 (by induction from the
    first source), and every END from C on is in the new source's, from its offset 0, in commit
    order. Hence the ENDs in the union over sources of each source's contiguous run from offset 0
    (its prefix) are every END up to the newest source's prefix end (newest: the highest first
    END), as long as each older source's prefix reaches C. A source with a record beyond its
    prefix (a hole, or an offset held with two positions) has not: the cut stays at or below
    its prefix's last END. An older source whose last metadata objects are landed but not
    loaded yet is not visible in its metadata: the cut also stays below any streamed event whose
    transaction has no END in RAW, which catches it when that transaction's events are loaded
    (not when they are missing too: docs/dbt.md, "Not built").
    Whole: for each END, the staged change logs hold event_count streamed events (distinct table
    and lsn) with its tx_id and commit millisecond; an END sent by two sources is one transaction,
    counted once. Counted in stg_*_changes, what gold reads, not in RAW: a build that follows
    loads selects only what is downstream of the tables loaded, so a staged log it leaves alone
    can lack rows RAW's snapshot already holds, and a cut counted in RAW would then pass
    transactions gold cannot see (a torn build, caught by 61-gold-cut at 500 tx/s). The history
    models are upstream too, so the cut moves only after the versions the dim_* views read.
    Cost: the prefixes come from cut_marks, which carries each source's verified run forward and
    holds only the records the cut may still need (the ENDs above it and their BEGINs, records
    outside a run), so a build reads the metadata loaded since, not all of it; events are read
    only from the least BEGIN position of the ENDs above the previous cut, and the ENDs at or
    below it (for the check of events without an END) from there. -#}
-- depends_on: {{ ref('accounts_history') }}, {{ ref('customers_history') }}
{{ config(materialized='incremental', unique_key='cut_key', incremental_strategy=upsert_strategy(), tmp_relation_type=batch_relation_type(), on_schema_change='fail') }}

{%- set metadata = source('raw', 'transaction_metadata') -%}
{%- set marks = ref('cut_marks') -%}
{%- set prev_lsn = own_max('lsn', 0) -%}
{#- Where the events read below can start (no END above the cut has a BEGIN below it), as a
    constant: the ENDs at or below the cut that the torn check may need are read from RAW from
    there, so the scan skips older blocks. -#}
{%- set begin_from = prev_lsn + 1 -%}
{%- if execute and load_relation(marks) is not none -%}
    {%- set found = run_query("select min(b.lsn) from " ~ marks ~ " as b inner join " ~ marks ~ " as e"
        ~ " on b.tx_id = e.tx_id and b.commit_ts_us = e.commit_ts_us"
        ~ " where b.kind = 'record' and e.kind = 'record' and b.op = 'BEGIN' and e.op = 'END' and e.lsn > " ~ prev_lsn).columns[0].values() -%}
    {%- set begin_from = found[0] if found | length > 0 and found[0] is not none else begin_from -%}
{%- endif %}

-- the metadata records the cut may still need (cut_marks): every END above the previous cut
-- and its BEGIN, and every record outside a source's prefix
{#- Not built yet (a build that selected the cut alone on a new warehouse): no progress, the cut
    holds. #}
{%- if execute and load_relation(marks) is none %}
    {%- set marks = "(select cast(null as varchar) as kind, cast(null as varchar) as source_id,"
        ~ " cast(null as bigint) as md_offset, cast(null as varchar) as op, cast(null as bigint) as tx_id,"
        ~ " cast(null as bigint) as lsn, cast(null as bigint) as commit_ts_us, cast(null as bigint) as event_count,"
        ~ " cast(null as bigint) as run_end, cast(null as bigint) as first_end, cast(null as bigint) as last_end,"
        ~ " cast(null as bigint) as break_offset where false)" %}
{%- endif %}
with marks as (
    select source_id, md_offset, op, tx_id, lsn, commit_ts_us, event_count
    from {{ marks }} as m
    where kind = 'record'
),

-- per source: its prefix (run_end), the first and last END of it, and whether it holds records
-- beyond it
sources as (
    select source_id, run_end, first_end, last_end, case when break_offset is null then 0 else 1 end as broken
    from {{ marks }} as m
    where kind = 'source'
),

prefixes as (
    select m.*
    from marks as m
    inner join sources as s on m.source_id is not distinct from s.source_id
    where m.md_offset <= s.run_end
),

-- how far the union of prefixes is gap-free: the newest source's prefix end, and no further
-- than the last END of any source with a record beyond its prefix
reach as (
    select least(
        coalesce((select max(last_end) from sources where first_end = (select max(first_end) from sources)), 0),
        coalesce((select min(coalesce(last_end, 0)) from sources where broken = 1), 9223372036854775807)
    ) as lsn
),

ends as (
    select tx_id, lsn, commit_ts_us, max(event_count) as event_count,
        count(distinct event_count) as counts, max(md_offset) as md_offset
    from (
        select tx_id, lsn, commit_ts_us, md_offset, event_count
        from prefixes
        where op = 'END' and lsn > {{ prev_lsn }} and lsn <= (select lsn from reach)
    ) as e
    group by tx_id, lsn, commit_ts_us
),

begins as (
    select min(b.lsn) as lsn
    from prefixes as b
    inner join ends as e on b.tx_id = e.tx_id and b.commit_ts_us = e.commit_ts_us
    where b.op = 'BEGIN'
),

events as (
    {%- for table in ['customers', 'accounts', 'transactions'] %}
    {%- if not loop.first %}
    union
    {%- endif %}
    {%- set staged = ref('stg_' ~ table ~ '_changes') %}
    {#- A first build that follows one table's load has not built the other staged logs yet:
        nothing of theirs is staged, so no transaction touching them is whole yet. #}
    {%- if not execute or load_relation(staged) is not none %}
    select '{{ table }}' as source_table, lsn, tx_id, date_trunc('millisecond', committed_at) as committed_ms
    from {{ staged }}
    where {{ streamed() }}
        and lsn >= (select lsn from begins) and lsn <= (select max(lsn) from ends)
    {%- else %}
    select '{{ table }}' as source_table, cast(null as bigint) as lsn, cast(null as varchar) as tx_id,
        cast(null as {{ instant_type() }}) as committed_ms
    where false
    {%- endif %}
    {%- endfor %}
),

counted as (
    select tx_id, committed_ms, count(*) as events
    from events
    group by tx_id, committed_ms
),

-- every END RAW holds that an event read above may belong to: those above the previous cut are
-- all in marks, those at or below it are read from RAW from the least BEGIN on (an END sits above
-- its transaction's events)
known_ends as (
    select tx_id, commit_ts_us from marks where op = 'END'
    union all
    select tx_id, commit_ts_us from {{ metadata }}
    where op = 'END' and lsn >= {{ begin_from }} and lsn <= {{ prev_lsn }}
),

-- the cut stays below the first END not wholly loaded (or whose sources disagree on its count),
-- and below a streamed event whose transaction has no END in RAW at all: its END is above the
-- event and missing (not loaded yet, or in an older source's tail not loaded yet)
torn as (
    select min(lsn) as lsn from (
        select e.lsn
        from ends as e
        left join counted as c on e.tx_id = c.tx_id and {{ instant_from_us('e.commit_ts_us') }} = c.committed_ms
        where c.events is null or c.events <> e.event_count or e.counts > 1
        union all
        select v.lsn
        from events as v
        where not exists (
            select 1 from known_ends as m
            where m.tx_id = v.tx_id and {{ instant_from_us('m.commit_ts_us') }} = v.committed_ms)
    ) as stops
),

advanced as (
    select md_offset, lsn, commit_ts_us
    from ends
    where lsn < coalesce((select lsn from torn), lsn + 1)
    qualify row_number() over (order by lsn desc) = 1
),

previous as (
    {%- if is_incremental() %}
    select lsn, commit_ts, metadata_offset from {{ this }}
    {%- else %}
    select cast(0 as bigint) as lsn, cast(null as {{ instant_type() }}) as commit_ts,
        cast(-1 as bigint) as metadata_offset
    {%- endif %}
)

select
    'gold' as cut_key,
    coalesce(a.lsn, p.lsn) as lsn,
    coalesce({{ instant_from_us('a.commit_ts_us') }}, p.commit_ts) as commit_ts,
    {{ built_at() }} as built_at,
    coalesce(a.md_offset, p.metadata_offset) as metadata_offset
from previous as p
left join advanced as a on true
