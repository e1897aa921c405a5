{#- The account versions within the cut this build computed (see customers_in_cut). -#}
{{ config(materialized='incremental', unique_key='account_version_key', incremental_strategy='history_range', tmp_relation_type=batch_relation_type(), history_key='account_id', history_closing=['effective_to', 'is_current'], on_schema_change='fail') }}

with versions as (
{{ dimension_in_cut(ref('accounts_history'), 'account_id', 'account_version_key') }}
)

select
    version_key as account_version_key,
    {{ dimension_columns('accounts') }},
    {{ dimension_validity_columns() }}
from versions
-- in log order, so bounds on lsn skip old blocks (see scd2_history)
order by lsn
