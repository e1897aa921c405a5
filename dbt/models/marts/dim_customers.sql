{#- A view: the customer history under the names BI tools know from dbt snapshots. History is
    already a table built incrementally, so a second copy would only cost time and storage. -#}
{{ config(materialized='view') }}

with versions as (
{{ history_in_cut(ref('customers_history'), 'customer_id', published_cut()) }}
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
