{{ config(materialized='incremental', unique_key='version_key', incremental_strategy=upsert_strategy(), on_schema_change='fail') }}

{{ change_log('transactions', 'transaction_id', [
    ['transaction_id', 'text'],
    ['account_id', 'text'],
    ['transaction_type', 'text'],
    ['amount', 'money'],
    ['currency', 'text'],
    ['related_account_id', 'text'],
    ['status', 'text'],
    ['description', 'text'],
    ['category', 'text'],
    ['reverses_transaction_id', 'text'],
    ['created_at', 'instant'],
    ['updated_at', 'instant'],
    ['version', 'bigint'],
]) }}
