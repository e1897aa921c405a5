{#- The ledger as of the cut: one row per transaction, its latest status, merged by key. -#}
-- depends_on: {{ ref('cut') }}
{{ config(materialized='incremental', unique_key='transaction_id', incremental_strategy=upsert_strategy(), tmp_relation_type=batch_relation_type(), on_schema_change='fail') }}

{#- Within the cut: each transaction's latest version among the changes that enter it in this
    build (entering_cut), unless the row held is newer. -#}
{%- set cut = cut_lsn() -%}
{%- set held = own_max('end_lsn', -1) -%}
{%- set begin = first_begin_lsn(held, cut) %}

with entering as (
    select c.*, {{ end_lsn_of('c') }} as end_lsn
    from {{ changes_entering(ref('stg_transactions_changes'), held, cut, begin) }} as c
    {{ join_transaction_ends(held, cut) }}
    where {{ entering_cut(held, cut, begin) }}
    qualify row_number() over (partition by c.transaction_id order by c.lsn desc, {{ first_copy_order() | join(', ') }}) = 1
)

select
    transaction_id,
    account_id,
    related_account_id,
    transaction_type,
    amount,
    currency,
    status,
    description,
    category,
    reverses_transaction_id,
    reverses_transaction_id is not null as is_reversal,
    created_at,
    updated_at,
    version,
    committed_at as last_changed_at,
    lsn,
    end_lsn,
    _loaded_at,
    {{ built_at() }} as _built_at
from entering
{%- if is_incremental() %}
where not exists (
    select 1 from {{ this }} as held
    where held.transaction_id = entering.transaction_id and held.lsn > entering.lsn
)
{%- endif %}
