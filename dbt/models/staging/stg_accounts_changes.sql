{{ config(materialized='incremental', unique_key='version_key', incremental_strategy=upsert_strategy(), on_schema_change='fail') }}

{{ change_log('accounts', 'account_id', [
    ['account_id', 'text'],
    ['customer_id', 'text'],
    ['account_type', 'text'],
    ['currency', 'text'],
    ['nickname', 'text'],
    ['balance', 'money'],
    ['status', 'text'],
    ['created_at', 'instant'],
    ['updated_at', 'instant'],
    ['version', 'bigint'],
]) }}
