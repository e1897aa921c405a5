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
    version,
    is_deleted,
    valid_from as effective_from,
    valid_to as effective_to,
    is_current,
    lsn,
    _built_at
from {{ ref('accounts_history') }}
