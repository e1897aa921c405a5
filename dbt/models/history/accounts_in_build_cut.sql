{#- The account versions as of the cut this build computed, before it is published: what
    gold.dim_accounts will show once it is. balances_match_postings checks these against the
    postings the build wrote, so a build whose gold would be torn fails and publishes nothing
    (dim_accounts itself still shows the published cut while the build runs). A view, not
    ephemeral: dbt left the ephemeral's CTE out of the test's SQL on a full refresh. -#}
{{ config(materialized='view') }}

{{ history_in_cut(ref('accounts_history'), 'account_id') }}
