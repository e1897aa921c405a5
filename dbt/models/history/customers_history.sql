{{ config(materialized='incremental', unique_key='version_key', incremental_strategy='history_range', tmp_relation_type=batch_relation_type(), history_key='customer_id', on_schema_change='fail') }}

{{ scd2_history(ref('stg_customers_changes'), 'customer_id', 'customers') }}
