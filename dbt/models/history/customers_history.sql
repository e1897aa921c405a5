{#- SCD2 history from the change log (macros/history.sql). An incremental build reads the log from
    each touched key's anchor on (a constant lower bound, so old blocks are skipped) and replaces
    the key's rows from there (history_range, bounded by the batch's least lsn, a constant too):
    its reads follow the change and the touched keys' latest versions, not the whole history. -#}
{{ config(materialized='incremental', unique_key='version_key', incremental_strategy='history_range', tmp_relation_type=batch_relation_type(), history_key='customer_id', history_closing=['valid_to', 'is_current'], on_schema_change='fail') }}

{{ scd2_history(ref('stg_customers_changes'), 'customer_id', 'customers') }}
