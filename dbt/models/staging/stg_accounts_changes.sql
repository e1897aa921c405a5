{#- Keyed on (version_key, lsn): version_key names the lsn already, and the second column lets the
    upsert skip every block of older positions (see change_log). Written in log order, so every
    read bounded by lsn downstream skips the older blocks too. -#}
{{ config(materialized='incremental', unique_key=['version_key', 'lsn'], incremental_strategy=upsert_strategy(), tmp_relation_type=batch_relation_type(), on_schema_change='fail') }}

{{ change_log('accounts', 'account_id') }}
