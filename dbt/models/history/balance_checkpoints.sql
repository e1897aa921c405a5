{#- Where balances_match_postings last checked each account in a build whose tests passed, with
    the sum of the postings counted there (never the balance: a checkpoint is a sum of the
    ledger), so that the test checks a later version by adding the account's new postings
    (macros/balances.sql says when a checkpoint holds). Built after fct_postings' tests: a build
    whose test fails skips this model, and the checkpoints stay those of the last passing build.
    A run updates the accounts posted to since the last one; an account whose postings cannot be
    placed yet, or whose balance does not match (a build run without tests), keeps its
    checkpoint. The versions are the history's up to the cut, as the test's. -#}
-- depends_on: {{ ref('cut') }}
{{ config(materialized='incremental', unique_key='account_id', incremental_strategy=upsert_strategy(), tmp_relation_type=batch_relation_type(), on_schema_change='fail') }}

{%- set postings = ref('fct_postings') %}
{%- if is_incremental() %}
{%- set changed -%}
(select account_id, lsn from {{ postings }}
 -- every posting while no account has a checkpoint yet (builds before the first posting)
 where {{ built_at_condition(this, '>') }})
{%- endset %}
{%- set checkpoints = this %}
{%- else %}
{%- set changed = postings %}
{%- set checkpoints = none %}
{%- endif %}

with checks as (
{{ balance_checks(changed, changed, ref('accounts_history'), postings, ref('stg_transactions_changes'),
    source('raw', 'snapshot_windows'), cut_lsn(), checkpoints, least_checkpoint_lsn(checkpoints, changed)) }}
)

select
    account_id,
    lsn,
    tx_id,
    total,
    counted_to,
    -- a version of the account at or above its first: the next builds need not look below it
    first_lsn,
    {{ built_at() }} as _built_at
from checks
where unplaced = 0 and amounts = postings and total = balance
