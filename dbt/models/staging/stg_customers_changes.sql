{{ config(materialized='incremental', unique_key='version_key', incremental_strategy=upsert_strategy(), tmp_relation_type=batch_relation_type(), on_schema_change='fail') }}

{{ change_log('customers', 'customer_id') }}
