{#- A view: the account history within the cut under the names BI tools know from dbt snapshots (see
    dim_customers for why it is not a second table). -#}
{{ config(materialized='view') }}

with versions as (
{{ history_in_cut(ref('accounts_history'), 'account_id', published_cut()) }}
)

select
    version_key as account_version_key,
    account_id,
    customer_id,
    account_type,
    currency,
    nickname,
    balance,
    status,
    created_at,
    updated_at,
    {{ dimension_validity_columns() }}
from versions
