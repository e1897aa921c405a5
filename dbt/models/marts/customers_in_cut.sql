{#- The customer versions within the cut this build computed, with where each entered gold
    (end_lsn): gold.dim_customers shows them as of the published cut. A table built incrementally
    (dimension_in_cut), so no reader joins every version with its transaction's END: a build
    rewrites only the keys that changed or entered the cut. -#}
{{ config(materialized='incremental', unique_key='customer_version_key', incremental_strategy='history_range', tmp_relation_type=batch_relation_type(), history_key='customer_id', on_schema_change='fail') }}

with versions as (
{{ dimension_in_cut(ref('customers_history'), 'customer_id', 'customer_version_key') }}
)

select
    version_key as customer_version_key,
    customer_id,
    first_name,
    last_name,
    email,
    address_line,
    city,
    postal_code,
    country,
    closed_at,
    closed_at is not null as is_closed,
    created_at,
    updated_at,
    {{ dimension_validity_columns() }}
from versions
