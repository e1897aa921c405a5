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

{#- The typed fields of each entity's row image, [name, kind]; the change log types them and the
    history compares them to tell a snapshot re-read of an unchanged row from a new version. -#}
{% macro entity_fields(table) -%}
    {%- set fields = {
        'customers': [['customer_id', 'text'], ['first_name', 'text'], ['last_name', 'text'],
            ['email', 'text'], ['address_line', 'text'], ['city', 'text'], ['postal_code', 'text'],
            ['country', 'text'], ['closed_at', 'instant'], ['created_at', 'instant'],
            ['updated_at', 'instant'], ['version', 'bigint']],
        'accounts': [['account_id', 'text'], ['customer_id', 'text'], ['account_type', 'text'],
            ['currency', 'text'], ['nickname', 'text'], ['balance', 'money'], ['status', 'text'],
            ['created_at', 'instant'], ['updated_at', 'instant'], ['version', 'bigint']],
        'transactions': [['transaction_id', 'text'], ['account_id', 'text'],
            ['transaction_type', 'text'], ['amount', 'money'], ['currency', 'text'],
            ['related_account_id', 'text'], ['status', 'text'], ['description', 'text'],
            ['category', 'text'], ['reverses_transaction_id', 'text'], ['created_at', 'instant'],
            ['updated_at', 'instant'], ['version', 'bigint']],
    } -%}
    {{ return(fields[table]) }}
{%- endmacro %}

{#- The order in which copies of one (key, lsn) are kept: the first Kafka delivery, then the first
    load of it (the same object loaded under two keys), so a full refresh and any sequence of
    incremental runs keep the same copy. -#}
{% macro first_copy_order() -%}
    {{ return(['kafka_partition', 'kafka_offset', '_loaded_at', '_object_key']) }}
{%- endmacro %}

{#- a's row comes strictly before b's in the order of columns (lexicographic; Snowflake has no
    row-value comparison). -#}
{% macro precedes(a, b, columns) -%}
    {%- set column = columns[0] -%}
    ({{ a }}.{{ column }} < {{ b }}.{{ column }}
    {%- if columns | length > 1 %} or ({{ a }}.{{ column }} = {{ b }}.{{ column }} and {{ precedes(a, b, columns[1:]) }}){% endif %})
{%- endmacro %}

{#- One row per (key, lsn) of a RAW table: the row image typed, plus where it sits in the log and
    whether it is a snapshot read (op r, source.snapshot). A change event delivered twice (a
    capture restart, an object loaded twice) is kept once, the copy first_copy_order names. -#}
{% macro change_log(table, key) -%}
with events as (
    select
        {{ row_image() }} as image,
        op,
        lsn,
        {{ quoted('partition') }} as kafka_partition,
        {{ quoted('offset') }} as kafka_offset,
        tx_id,
        commit_ts_us,
        snapshot,
        _object_key,
        _loaded_at
    from {{ source('raw', table) }}
    where {{ loaded_since_last_run() }}
),

typed as (
    select
        {%- for name, kind in entity_fields(table) %}
        {{ typed_field('image', name, kind) }} as {{ name }},
        {%- endfor %}
        op,
        op = 'd' as is_deleted,
        lsn,
        kafka_partition,
        kafka_offset,
        tx_id,
        {{ instant_from_us('commit_ts_us') }} as committed_at,
        snapshot,
        _object_key,
        _loaded_at
    from events
),

batch as (
    select {{ key }} || '@' || cast(lsn as varchar) as version_key, *
    from typed
    qualify row_number() over (partition by {{ key }}, lsn order by {{ first_copy_order() | join(', ') }}) = 1
)

select *, {{ built_at() }} as _built_at
from batch
{%- if is_incremental() %}
-- a copy an earlier run kept stays when it comes first (and the batch's is not written); the
-- same version_key is the same lsn, and matching on lsn too lets the warehouse skip every block
-- of the log below the batch's positions (DuckDB's join filters on zone maps, Snowflake's
-- pruning) instead of comparing the batch with every version_key ever kept
where not exists (
    select 1 from {{ this }} as kept
    where kept.version_key = batch.version_key
        and kept.lsn = batch.lsn
        and {{ precedes('kept', 'batch', first_copy_order()) }}
)
{%- endif %}
-- in log order, so the table's blocks hold ranges of lsn: the reads bounded by lsn downstream
-- (the histories' events, the facts' entering changes) skip the old ones (DuckDB's zone maps,
-- Snowflake's pruning); a full build's rows are otherwise in the order of the window's partitions
order by lsn
{%- endmacro %}

{#- The latest event of each key by log position (lsn), deletes included and flagged; a snapshot
    re-read of an unchanged row is the latest event with the same values. An incremental run
    compares the batch with the row it already holds (for one lsn, the copy the change log keeps). -#}
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
qualify row_number() over (partition by {{ key }} order by lsn desc, {{ first_copy_order() | join(', ') }}) = 1
{%- endmacro %}

