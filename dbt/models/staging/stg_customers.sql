{{ config(materialized='incremental', unique_key='customer_id', incremental_strategy=upsert_strategy(), tmp_relation_type=batch_relation_type(), on_schema_change='fail') }}

{{ latest_version(ref('stg_customers_changes'), 'customer_id') }}
