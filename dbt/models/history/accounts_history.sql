{{ config(materialized='incremental', unique_key='version_key', incremental_strategy='history_range', tmp_relation_type=batch_relation_type(), history_key='account_id', on_schema_change='fail') }}

{{ scd2_history(ref('stg_accounts_changes'), 'account_id', 'accounts') }}
