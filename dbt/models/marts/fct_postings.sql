{#- Double-entry legs of the ledger: what each transaction did to each account's balance. A
    deposit credits its account, a withdrawal debits it, a transfer debits account_id and credits
    related_account_id. A reversal is an ordinary posting of the opposite kind, so the legs of a
    transaction never change after its insert, and a transaction posts at its first event that
    holds its row: the insert, a snapshot read or, when the destination missed the insert (made
    in a gap), an update streamed before the snapshot that repairs the gap read the row (its
    reversal, whose full after image holds the same legs). The update may be all the log ever
    shows of it: a chunk drops a row changed in its window (docs/capture.md). -#}
{#- Applied with history_range on posting_key: a posting is only ever replaced by one at an earlier
    or the same lsn (first_event below), so the rows a batch replaces are at or above its own
    lsn, and the delete reads only the ledger's recent blocks instead of every posting_key. -#}
-- depends_on: {{ ref('cut') }}
{{ config(materialized='incremental', unique_key='posting_key', incremental_strategy='history_range', tmp_relation_type=batch_relation_type(), history_key='posting_key', on_schema_change='fail') }}

{#- Within the cut: the inserts, reads and updates that enter it in this build (entering_cut),
    from the position the ledger already holds (the newest end_lsn) up to the cut's, so one held
    back by a build is taken by the next. -#}
{%- set cut = cut_lsn() -%}
{%- set held = own_max('end_lsn', -1) -%}
{%- set begin = first_begin_lsn(held, cut) %}

with entering as (
    select c.*, {{ end_lsn_of('c') }} as end_lsn
    from {{ changes_entering(ref('stg_transactions_changes'), held, cut, begin) }} as c
    {{ join_transaction_ends(held, cut) }}
    where c.op in ('c', 'r', 'u') and {{ entering_cut(held, cut, begin) }}
),
{%- if is_incremental() %}

-- the lsn each transaction of the batch already posted at
posted as (
    select transaction_id, min(lsn) as lsn
    from {{ this }}
    where transaction_id in (select transaction_id from entering)
    group by transaction_id
),
{%- endif %}

-- A transaction posts once, at its first event by log position (an update only when nothing
-- earlier of it was captured): a re-read or a later update posts nothing, and a late earlier
-- event replaces the posting held.
first_event as (
    select entering.*
    from entering
    {%- if is_incremental() %}
    left join posted on entering.transaction_id = posted.transaction_id
    where posted.lsn is null or entering.lsn <= posted.lsn
    {%- endif %}
    qualify row_number() over (partition by entering.transaction_id order by entering.lsn) = 1
),

legs as (
    select
        transaction_id,
        1 as leg,
        account_id,
        case when transaction_type = 'DEPOSIT' then amount else -amount end as amount,
        currency, transaction_type, committed_at, lsn, tx_id, end_lsn, _loaded_at
    from first_event
    union all
    select
        transaction_id,
        2 as leg,
        related_account_id as account_id,
        amount,
        currency, transaction_type, committed_at, lsn, tx_id, end_lsn, _loaded_at
    from first_event
    where transaction_type = 'TRANSFER'
)

select
    transaction_id || ':' || cast(leg as varchar) as posting_key,
    transaction_id,
    leg,
    account_id,
    amount,
    currency,
    transaction_type,
    committed_at as posted_at,
    lsn,
    tx_id,
    -- where it entered gold: its transaction's END (a read's own position)
    end_lsn,
    _loaded_at,
    {{ built_at() }} as _built_at
from legs
-- in log order, so the reads and deletes bounded by lsn skip old blocks (see scd2_history)
order by lsn
