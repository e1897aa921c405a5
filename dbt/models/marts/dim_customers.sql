{#- The customer history within the cut under the names BI tools know from dbt snapshots. A table
    built incrementally (dimension_in_cut), not a view over the history: a view joined every
    version with its transaction's END on every read (the cost of every reader grew with
    history); the table is published as of the cut and a build rewrites only the keys that
    changed or entered the cut. -#}
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
