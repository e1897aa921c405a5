{#- Double-entry legs of the ledger: what each transaction did to each account's balance. A
    deposit credits its account, a withdrawal debits it, a transfer debits account_id and credits
    related_account_id. A reversal is an ordinary posting of the opposite kind, so the legs of a
    transaction never change after its insert, and only inserts are read here. -#}
{{ config(materialized='incremental', unique_key='posting_key', incremental_strategy=upsert_strategy(), on_schema_change='fail') }}

with inserted as (
    select *
    from {{ ref('stg_transactions_changes') }}
    where op in ('c', 'r') and {{ loaded_since_last_run() }}
),

legs as (
    select
        transaction_id,
        1 as leg,
        account_id,
        case when transaction_type = 'DEPOSIT' then amount else -amount end as amount,
        currency, transaction_type, committed_at, lsn, _loaded_at
    from inserted
    union all
    select
        transaction_id,
        2 as leg,
        related_account_id as account_id,
        amount,
        currency, transaction_type, committed_at, lsn, _loaded_at
    from inserted
    where transaction_type = 'TRANSFER'
)

select
    transaction_id || ':' || cast(leg as varchar) as posting_key,
    transaction_id,
    leg,
    account_id,
    amount,
    currency,
    transaction_type,
    committed_at as posted_at,
    lsn,
    _loaded_at,
    {{ built_at() }} as _built_at
from legs
