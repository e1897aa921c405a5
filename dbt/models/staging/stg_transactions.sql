{{ config(materialized='incremental', unique_key='transaction_id', incremental_strategy=upsert_strategy(), tmp_relation_type=batch_relation_type(), on_schema_change='fail') }}

{{ latest_version(ref('stg_transactions_changes'), 'transaction_id') }}
