{#- A view: the account history under the names BI tools know from dbt snapshots (see
    dim_customers for why it is not a second table). -#}
{{ config(materialized='view') }}

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
from {{ ref('accounts_history') }}
