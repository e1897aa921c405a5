{#- The customer versions within the cut this build computed, with where each entered gold
    (end_lsn): gold.dim_customers shows them as of the published cut. A table built incrementally
    (dimension_in_cut), so no reader joins every version with its transaction's END: a build
    rewrites a touched key from the first of its rows that can differ, and looks up only the
    ENDs above the versions it has none held for (most customers never change, so a rewrite from
    a first version must not read every END of the log). -#}
{{ config(materialized='incremental', unique_key='customer_version_key', incremental_strategy='history_range', tmp_relation_type=batch_relation_type(), history_key='customer_id', history_closing=['effective_to', 'is_current'], on_schema_change='fail') }}

with versions as (
{{ dimension_in_cut(ref('customers_history'), 'customer_id', 'customer_version_key') }}
)

select
    version_key as customer_version_key,
    {{ dimension_columns('customers') }},
    {{ dimension_validity_columns() }}
from (select *, closed_at is not null as is_closed from versions) as versions
-- in log order, so bounds on lsn skip old blocks (see scd2_history)
order by lsn
