{#- SCD Type 2 from the change log (stg_<table>_changes, one row per key and lsn).

    Versions: every streamed change (op c, u, d) is a version. A snapshot read (op r) is the row
    as it stood at the snapshot's position: it is a version only when it differs from the row the
    log held just before it (a change made while nothing was capturing, or a row that reappeared
    after a delete); a re-read of an unchanged row adds nothing. A key that a complete snapshot
    (complete_snapshots) did not read, though the log had it alive just before, was deleted while
    nothing was capturing: it gets a delete version at the snapshot's position (snapshot
    'inferred', its row image the last one the log showed, its time the snapshot's first read).
    So does a key alive before a completed incremental snapshot's window (complete_windows) with
    no event inside it: the delete at the window's closing position, its time the window's
    opening time.

    Validity: valid_from is the version's commit time, except that the time of a snapshot read or
    an inferred delete (a read time, perhaps from another clock) is clamped to the commit time of
    the key's next streamed change, and valid_from never decreases along the log (running
    maximum). So no window runs backwards, whatever an r event carries; valid_to is the next
    version's valid_from.

    Incremental: the history of a key up to its last streamed version before the batch does not
    depend on anything later (the clamp looks only as far as the next streamed change), so each
    key of the batch is recomputed from that version on (all of the key's events when it has
    none), seeded with its valid_from, and the key's rows from there on are replaced (strategy
    history_range), which also removes a version that a late event has absorbed. A snapshot the
    batch completes, or a window it completes, brings every key the history had before it into
    the batch. -#}

{#- The snapshots that read the whole table and are wholly loaded: one (lsn, tx_id) of op r rows
    whose source.snapshot markers open and close the table's rows (Debezium's first or
    first_in_data_collection on its first row, last_in_data_collection or last on its last), on
    one Kafka partition at consecutive offsets with none missing. A single-row table carries only
    one marker and an empty table none: never complete, so never used to infer a delete; nor are
    incremental snapshots (source.snapshot 'incremental', no markers). -#}
{% macro complete_snapshots(changes, where='true') -%}
    select lsn as open_lsn, lsn, tx_id, min(committed_at) as read_at, max(_loaded_at) as loaded_at
    from {{ changes }}
    where op = 'r'
        and snapshot in ('first', 'first_in_data_collection', 'true', 'last_in_data_collection', 'last')
        and {{ where }}
    group by lsn, tx_id
    having count(distinct kafka_partition) = 1
        and count(*) = max(kafka_offset) - min(kafka_offset) + 1
        and count(case when snapshot in ('first', 'first_in_data_collection') then 1 end) = 1
        and count(case when snapshot in ('last_in_data_collection', 'last') then 1 end) = 1
{%- endmacro %}

{#- The completed incremental snapshots of table (raw.snapshot_windows, written by the capture
    beside the data once a table's last chunk was delivered, docs/capture.md) whose rows are all
    loaded: every row the table held between open_lsn and lsn (the window) has an event inside it,
    read (op r) or streamed. Loaded means at least as many distinct keys among the window's
    incremental r events as the capture emitted (a window loaded before its rows is not used yet,
    so a key whose read is still on its way is never ended). loaded_at is the latest load of the
    record and of those rows, whichever came last: the record is an object of its own, written
    after the rows, and a build that ran between the two must not take the window as complete
    at its rows' load (it would never bring the keys it ends into a batch). where filters on the
    window (w.*). -#}
{% macro complete_windows(changes, key, table, where='true') -%}
    select w.open_lsn, w.lsn, w.tx_id, w.read_at,
        greatest(coalesce(max(c._loaded_at), w.loaded_at), w.loaded_at) as loaded_at
    from (
        select
            cast({{ json_text(quoted('after'), 'open_lsn') }} as bigint) as open_lsn,
            lsn,
            tx_id,
            {{ instant_from_us('commit_ts_us') }} as read_at,
            cast({{ json_text(quoted('after'), 'rows') }} as bigint) as row_count,
            min(_loaded_at) as loaded_at
        from {{ source('raw', 'snapshot_windows') }}
        where source_schema = 'public' and source_table = '{{ table }}'
        group by 1, 2, 3, 4, 5
    ) as w
    left join {{ changes }} as c
        on c.op = 'r' and c.snapshot = 'incremental' and c.lsn >= w.open_lsn and c.lsn <= w.lsn
    where {{ where }}
    group by w.open_lsn, w.lsn, w.tx_id, w.read_at, w.row_count, w.loaded_at
    having count(distinct c.{{ key }}) >= w.row_count
{%- endmacro %}

{#- A change event that streaming delivered (its time is a commit time), as opposed to a snapshot
    read or an inferred delete. -#}
{% macro streamed(alias='') -%}
    ({{ alias }}op <> 'r' and coalesce({{ alias }}snapshot, '') <> 'inferred')
{%- endmacro %}

{% macro scd2_history(changes, key, table) -%}
{%- set fields = entity_fields(table) -%}
{%- set by_key = "partition by " ~ key ~ " order by lsn" -%}
{%- if is_incremental() %}
{#- What the batch needs of the snapshots, read first as constants: the positions of the reads it
    loaded (a snapshot it may complete), and whether the table has any incremental snapshot
    window at all. Without a read or a window the branches below that look for them are left
    out: each scanned the whole change log's op column (a filter on op prunes no block). -#}
{%- set reads = none -%}
{%- set windows = true -%}
{%- if execute -%}
    {%- set found = run_query("select min(lsn), max(lsn) from " ~ changes ~ " where " ~ loaded_since_last_run() ~ " and op = 'r'") -%}
    {%- set reads = found.rows[0] if found.rows[0][0] is not none else none -%}
    {%- set windows = run_query("select count(*) from " ~ source('raw', 'snapshot_windows')
        ~ " where source_schema = 'public' and source_table = '" ~ table ~ "'").columns[0].values()[0] > 0 -%}
{%- endif -%}
{%- set anchored -%}
batch_keys as (
    select {{ key }}, min(lsn) as min_lsn
    from {{ changes }}
    where {{ loaded_since_last_run() }}
    group by {{ key }}
    {%- if reads is not none %}
    union all
    -- every key the history had before a snapshot the batch completed: it may be one the
    -- snapshot did not read
    select h.{{ key }}, min(c.lsn)
    from {{ this }} as h
    inner join ({{ complete_snapshots(changes, "lsn >= " ~ reads[0] ~ " and lsn <= " ~ reads[1] ~ " and lsn in (select lsn from " ~ changes ~ " where " ~ loaded_since_last_run() ~ " and op = 'r')") }}) as c
        on h.lsn < c.lsn
    group by h.{{ key }}
    {%- endif %}
    {%- if windows %}
    union all
    -- and before a window that became complete (its record or its last rows loaded)
    select h.{{ key }}, min(w.open_lsn)
    from {{ this }} as h
    inner join ({{ complete_windows(changes, key, table) }}) as w
        on h.lsn < w.open_lsn
    where {{ loaded_since_last_run('w.loaded_at') }}
    group by h.{{ key }}
    {%- endif %}
),

batch_from as (
    select {{ key }}, min(min_lsn) as min_lsn from batch_keys group by {{ key }}
),

-- Each key's current version (one per key), read on its own: joined with the batch's keys in
-- the scan, DuckDB compared every version's key with the keys' least and greatest (a join filter
-- it pushes into the scan) before is_current chose the few: 0.23 s of CPU at 12.5 M versions,
-- 0.02 s read apart.
current_rows as {{ materialized_cte() }} (
    select {{ key }}, lsn, valid_from, op, snapshot from {{ this }} where is_current
),

-- Each batch key's anchor is its last streamed version below where the batch starts. When the
-- key's current version sits below the batch and is streamed, it is that version: found through
-- is_current, without reading the key's older versions (the whole history, when a load touches
-- most keys).
current_below as (
    select h.{{ key }}, h.lsn, h.valid_from, {{ streamed('h.') }} as is_streamed
    from current_rows as h
    inner join batch_from as b on h.{{ key }} = b.{{ key }} and h.lsn < b.min_lsn
),

-- only for the other keys (a late event below the current version, a current snapshot read)
-- are the versions below the batch read (an empty set ends the join before it reads them)
known as (
    select h.{{ key }}, h.lsn, h.valid_from, {{ streamed('h.') }} as is_streamed
    from {{ this }} as h
    inner join (
        select b.{{ key }}, b.min_lsn
        from batch_from as b
        left join current_below as c on b.{{ key }} = c.{{ key }} and c.is_streamed
        where c.{{ key }} is null
    ) as b on h.{{ key }} = b.{{ key }} and h.lsn < b.min_lsn
),

anchor as (
    select {{ key }}, lsn, valid_from from current_below where is_streamed
    union all
    select {{ key }}, lsn, valid_from
    from known
    where is_streamed
    qualify row_number() over (partition by {{ key }} order by lsn desc) = 1
),

-- Where each key's events are read from: its anchor; all of them when the history holds the key
-- below the batch only as snapshot reads (null); else where the batch starts, since the key's
-- first event by lsn is always a version, so a key with no version below the batch has no
-- event there either.
event_from as (
    select b.{{ key }},
        case when a.lsn is not null then a.lsn when k.{{ key }} is null then b.min_lsn end as from_lsn
    from batch_from as b
    left join anchor as a on b.{{ key }} = a.{{ key }}
    left join (
        select {{ key }} from current_below union select {{ key }} from known
    ) as k on b.{{ key }} = k.{{ key }}
)
{%- endset -%}
{#- The least of them bounds the read of the change log (-1: no bound, a key read from its
    first event), so it reads the recent blocks, not every event of every key the batch touches:
    read first and written in as a constant, since a scalar subquery in the filter was evaluated
    as a join after the whole change log was read. -#}
{%- set from_lsn = -1 -%}
{%- if execute -%}
    {%- set found = run_query("with " ~ anchored ~ " select case when count(*) = count(from_lsn) then min(from_lsn) end from event_from").columns[0].values()[0] -%}
    {%- set from_lsn = found if found is not none else -1 -%}
{%- endif %}
with {{ anchored }},

events as (
    select c.* exclude (_built_at), a.valid_from as floor_from
    from {{ changes }} as c
    inner join event_from as f on c.{{ key }} = f.{{ key }}
    left join anchor as a on c.{{ key }} = a.{{ key }}
    where (f.from_lsn is null or c.lsn >= f.from_lsn) and c.lsn >= {{ from_lsn }}
),

-- the snapshots that can end a version of the events: those above from_lsn (one at or below
-- every event ends none, see inferred)
snapshots as (
    {{ complete_snapshots(changes, "lsn > " ~ from_lsn) }}
    {%- if windows %}
    union all
    {{ complete_windows(changes, key, table, "w.lsn > " ~ from_lsn) }}
    {%- endif %}
),
{%- else %}
with events as (
    select * exclude (_built_at), cast(null as {{ instant_type() }}) as floor_from
    from {{ changes }}
),

snapshots as (
    {{ complete_snapshots(changes) }}
    union all
    {{ complete_windows(changes, key, table) }}
),
{%- endif %}

keyed as (
    select events.*, lead(lsn) over ({{ by_key }}) as next_lsn
    from events
),

-- a key alive in the log just before a complete snapshot that did not read it, or before a
-- window with no event of it inside: deleted meanwhile
inferred as (
    select
        k.{{ key }} || '@' || cast(s.lsn as varchar) as version_key,
        {%- for name, _ in fields %}
        k.{{ name }},
        {%- endfor %}
        'd' as op,
        true as is_deleted,
        s.lsn,
        k.kafka_partition,
        cast(null as bigint) as kafka_offset,
        s.tx_id,
        s.read_at as committed_at,
        'inferred' as snapshot,
        cast(null as varchar) as _object_key,
        s.loaded_at as _loaded_at,
        k.floor_from
    from keyed as k
    inner join snapshots as s on k.lsn < s.open_lsn and (k.next_lsn is null or k.next_lsn > s.lsn)
    where k.op <> 'd'
    qualify row_number() over (partition by k.{{ key }}, k.lsn order by s.lsn) = 1
),

all_events as (
    select * exclude (next_lsn) from keyed
    union all
    select * from inferred
),

compared as (
    select
        all_events.*,
        op <> 'r'
            or lag(op) over ({{ by_key }}) is null
            or lag(op) over ({{ by_key }}) = 'd'
            {%- for name, _ in fields %}
            or {{ name }} is distinct from lag({{ name }}) over ({{ by_key }})
            {%- endfor %} as is_version,
        -- how many streamed changes of the key are at or after this event: an r event and the
        -- next streamed change after it share the number
        count(case when {{ streamed() }} then 1 end) over (
            partition by {{ key }} order by lsn desc rows between unbounded preceding and current row) as stream_segment
    from all_events
),

versions as (
    select
        compared.*,
        case when not {{ streamed() }}
            then least(committed_at, coalesce(
                max(case when {{ streamed() }} then committed_at end) over (partition by {{ key }}, stream_segment),
                committed_at))
            else committed_at
        end as clamped_from
    from compared
    where is_version
),

windows as (
    select
        versions.*,
        greatest(coalesce(floor_from, clamped_from), max(clamped_from) over (
            {{ by_key }} rows between unbounded preceding and current row)) as valid_from
    from versions
)

select
    windows.* exclude (floor_from, is_version, stream_segment, clamped_from),
    lead(valid_from) over ({{ by_key }}) as valid_to,
    lead(valid_from) over ({{ by_key }}) is null as is_current,
    {{ built_at() }} as _built_at
from windows
-- in log order, so the table's blocks hold ranges of lsn: the incremental reads and deletes bound
-- by lsn then skip the old ones (DuckDB's zone maps, Snowflake's pruning), also in what a full
-- build wrote, which is otherwise grouped by key (the windows' partitions)
order by lsn
{%- endmacro %}
