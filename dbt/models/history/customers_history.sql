{{ config(materialized='incremental', unique_key='version_key', incremental_strategy=upsert_strategy(), on_schema_change='fail') }}

{{ scd2_history(ref('stg_customers_changes'), 'customer_id') }}
