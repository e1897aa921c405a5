{{ config(materialized='incremental', unique_key='version_key', incremental_strategy=upsert_strategy(), on_schema_change='fail') }}

{{ change_log('customers', 'customer_id', [
    ['customer_id', 'text'],
    ['first_name', 'text'],
    ['last_name', 'text'],
    ['email', 'text'],
    ['address_line', 'text'],
    ['city', 'text'],
    ['postal_code', 'text'],
    ['country', 'text'],
    ['closed_at', 'instant'],
    ['created_at', 'instant'],
    ['updated_at', 'instant'],
    ['version', 'bigint'],
]) }}
