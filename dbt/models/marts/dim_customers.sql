{#- A view: the customer history within the published cut under the names BI tools know from dbt
    snapshots. The versions live in silver.customers_in_cut, built to the cut a build computes;
    this view moves only when a build publishes gold.cut, after every gold table committed. -#}
{{ config(materialized='view') }}

with versions as (
{{ published_versions(ref('customers_in_cut'), 'customer_id') }}
)

select
    customer_version_key,
    {{ dimension_columns('customers') }},
    {{ published_validity_columns() }}
from versions
