{#- A view: the account history within the published cut (see dim_customers), balances as
    DECIMAL(18,2). -#}
{{ config(materialized='view') }}

with versions as (
{{ published_versions(ref('accounts_in_cut'), 'account_id') }}
)

select
    account_version_key,
    {{ dimension_columns('accounts') }},
    {{ published_validity_columns() }}
from versions
