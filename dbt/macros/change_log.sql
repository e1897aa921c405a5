{#- The building blocks of the three entities' models: a typed change log, the latest version per
    key, and SCD2 history. Each reads only the rows loaded since the model's last run (see
    loaded_since_last_run) and is keyed, so an incremental run equals a full refresh. -#}

{#- One typed field of a row image. kind: text, money, instant or bigint. -#}
{% macro typed_field(image, name, kind) -%}
    {%- set text = json_text(image, name) -%}
    {%- if kind == 'money' -%}{{ to_money(text) }}
    {%- elif kind == 'instant' -%}{{ to_instant(text) }}
    {%- elif kind == 'bigint' -%}cast({{ text }} as bigint)
    {%- elif kind == 'text' -%}{{ text }}
    {%- else -%}{{ exceptions.raise_compiler_error("typed_field " ~ name ~ ": unknown kind " ~ kind) }}
    {%- endif -%}
{%- endmacro %}

{#- One row per committed version of a RAW table's rows: the row image typed, plus where it sits
    in the log. A change event delivered twice (a capture restart) has the same key and lsn: it
    is kept once. fields: a list of [name, kind] pairs; key: the primary-key field. -#}
{% macro change_log(table, key, fields) -%}
with events as (
    select
        {{ row_image() }} as image,
        op,
        lsn,
        {{ quoted('partition') }} as kafka_partition,
        {{ quoted('offset') }} as kafka_offset,
        tx_id,
        commit_ts_us,
        _object_key,
        _loaded_at
    from {{ source('raw', table) }}
    where {{ loaded_since_last_run() }}
),

typed as (
    select
        {%- for name, kind in fields %}
        {{ typed_field('image', name, kind) }} as {{ name }},
        {%- endfor %}
        op,
        op = 'd' as is_deleted,
        lsn,
        kafka_partition,
        kafka_offset,
        tx_id,
        {{ instant_from_us('commit_ts_us') }} as committed_at,
        _object_key,
        _loaded_at,
        {{ built_at() }} as _built_at
    from events
)

select
    {{ key }} || '@' || cast(lsn as varchar) as version_key,
    *
from typed
qualify row_number() over (partition by {{ key }}, lsn order by kafka_partition, kafka_offset) = 1
{%- endmacro %}

{#- The latest version of each key by log position (lsn, then offset), deletes included and
    flagged. An incremental run compares the batch with the version it already holds. -#}
{% macro latest_version(changes, key) -%}
with batch as (
    select * exclude (_built_at) from {{ changes }}
    where {{ loaded_since_last_run() }}
)
{%- if is_incremental() %},

candidates as (
    select * from batch
    union all
    select * exclude (_built_at) from {{ this }}
    where {{ key }} in (select {{ key }} from batch)
)
{%- endif %}

select *, {{ built_at() }} as _built_at
from {{ 'candidates' if is_incremental() else 'batch' }}
qualify row_number() over (partition by {{ key }} order by lsn desc, kafka_offset desc) = 1
{%- endmacro %}

{#- SCD Type 2 from the change log: every committed version, valid from its commit time until the
    next version's. An incremental run re-reads, for each key in the batch, the version before
    the batch's first one and all after it, so the old current version gets closed and a late
    version lands in order. -#}
{% macro scd2_history(changes, key) -%}
with batch as (
    select * exclude (_built_at) from {{ changes }}
    where {{ loaded_since_last_run() }}
),
{%- if is_incremental() %}

first_new as (
    select {{ key }}, min(lsn) as min_lsn from batch group by {{ key }}
),

predecessor as (
    select h.{{ key }}, max(h.lsn) as from_lsn
    from {{ this }} as h
    inner join first_new as f on h.{{ key }} = f.{{ key }} and h.lsn < f.min_lsn
    group by h.{{ key }}
),

reopened as (
    select h.* exclude (valid_from, valid_to, is_current, _built_at)
    from {{ this }} as h
    inner join first_new as f on h.{{ key }} = f.{{ key }}
    left join predecessor as p on h.{{ key }} = p.{{ key }}
    where h.lsn >= coalesce(p.from_lsn, f.min_lsn)
),

versions as (
    select * from reopened
    where version_key not in (select version_key from batch)
    union all
    select * from batch
),
{%- else %}

versions as (
    select * from batch
),
{%- endif %}

ordered as (
    select
        versions.*,
        committed_at as valid_from,
        lead(committed_at) over (partition by {{ key }} order by lsn, kafka_offset) as valid_to
    from versions
)

select
    ordered.*,
    valid_to is null as is_current,
    {{ built_at() }} as _built_at
from ordered
{%- endmacro %}
