{#- The consistent cut: the highest END position P such that every END at or below it is loaded
    and wholly loaded (docs/dbt.md, "Gold is a consistent cut"). One row: lsn (P), commit_ts
    (P's commit time), built_at, and metadata_offset, the Kafka offset of P's END on
    fin.transaction_metadata, where the next build starts reading.
    Gap-free: the metadata topic (one partition, no tombstones) holds every BEGIN and END in
    commit order at consecutive offsets, so RAW holding every offset after the previous cut's
    up to P's proves no END below P is missing; an offset held twice with different positions
    (a new source restarting its offsets), or one at or below the previous cut's offset above its
    position, stops the cut there (safe: it lags, never tears).
    Whole: for each END, RAW holds event_count streamed events (distinct table and lsn) with its
    tx_id and commit millisecond. Bounded by the previous cut: only metadata after its offset
    and events from the least BEGIN position of the transactions after it are read. -#}
{{ config(materialized='incremental', unique_key='cut_key', incremental_strategy=upsert_strategy(), tmp_relation_type=batch_relation_type(), on_schema_change='fail') }}

{%- set metadata = source('raw', 'transaction_metadata') -%}
{%- set offset = quoted('offset') -%}
{%- set prev_offset = own_max('metadata_offset', none) -%}
{%- if prev_offset is none and execute -%}
    {%- set first = run_query("select min(" ~ offset ~ ") - 1 from " ~ metadata).columns[0].values()[0] -%}
    {%- set prev_offset = first if first is not none else -1 -%}
{%- endif -%}
{%- set prev_offset = prev_offset if prev_offset is not none else -1 -%}
{%- set prev_lsn = own_max('lsn', 0) %}

with records as (
    select {{ offset }} as md_offset, op, tx_id, lsn, commit_ts_us,
        cast({{ json_text(quoted('after'), 'event_count') }} as bigint) as event_count
    from {{ metadata }}
    where {{ offset }} > {{ prev_offset }}
),

offsets as (
    select md_offset, count(distinct lsn) as positions,
        md_offset - row_number() over (order by md_offset) as drift
    from records
    group by md_offset
),

-- the first offset that breaks the run after the previous cut: missing before it, or ambiguous;
-- or the next one at once when a record at or below the previous cut's offset lies above its
-- position (a new source restarted the offsets: what it sent below that offset is not proven)
stop as (
    select min(md_offset) as md_offset from (
        select md_offset from offsets
        where drift <> {{ prev_offset }} or positions > 1
        union all
        select {{ prev_offset }} + 1 from {{ metadata }}
        where {{ offset }} <= {{ prev_offset }} and lsn > {{ prev_lsn }}
    ) as breaks
),

ends as (
    select distinct r.md_offset, r.tx_id, r.lsn, r.commit_ts_us, r.event_count
    from records as r
    where r.op = 'END' and r.md_offset < coalesce((select md_offset from stop), r.md_offset + 1)
),

begins as (
    select min(b.lsn) as lsn
    from records as b
    inner join ends as e on b.tx_id = e.tx_id and b.commit_ts_us = e.commit_ts_us
    where b.op = 'BEGIN'
),

events as (
    {%- for table in ['customers', 'accounts', 'transactions'] %}
    {%- if not loop.first %}
    union
    {%- endif %}
    select '{{ table }}' as source_table, lsn, tx_id, commit_ts_us - commit_ts_us % 1000 as commit_ms_us
    from {{ source('raw', table) }}
    where snapshot = 'false'
        and lsn >= (select lsn from begins) and lsn <= (select max(lsn) from ends)
    {%- endfor %}
),

counted as (
    select tx_id, commit_ms_us, count(*) as events
    from events
    group by tx_id, commit_ms_us
),

-- the first END not wholly loaded: the cut stays below it
torn as (
    select min(e.md_offset) as md_offset
    from ends as e
    left join counted as c on e.tx_id = c.tx_id and e.commit_ts_us = c.commit_ms_us
    where c.events is null or c.events <> e.event_count
),

advanced as (
    select md_offset, lsn, commit_ts_us
    from ends
    where md_offset < coalesce((select md_offset from torn), md_offset + 1)
    qualify row_number() over (order by md_offset desc) = 1
),

previous as (
    {%- if is_incremental() %}
    select lsn, commit_ts, metadata_offset from {{ this }}
    {%- else %}
    select cast(0 as bigint) as lsn, cast(null as {{ instant_type() }}) as commit_ts,
        cast({{ prev_offset }} as bigint) as metadata_offset
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
