{#- The ledger as it stands: one row per transaction, its latest status, merged by key. -#}
{{ config(materialized='incremental', unique_key='transaction_id', incremental_strategy=upsert_strategy(), tmp_relation_type=batch_relation_type(), on_schema_change='fail') }}

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
    _loaded_at,
    {{ built_at() }} as _built_at
from {{ ref('stg_transactions') }}
where {{ loaded_since_last_run() }}
