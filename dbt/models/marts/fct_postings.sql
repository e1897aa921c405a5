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
-- The first event found by each transaction's least lsn (an aggregate, which spills to disk),
-- not by row_number() over the transactions: that window, one partition per transaction, did
-- not fit a full refresh of 1,000,000 transactions in 384 MB on its own (docs/benchmarks.md).
-- The same rows: (transaction_id, lsn) is unique in the change log, and the held posting's
-- filter (at or below its lsn) keeps a transaction's least lsn whenever it keeps any.
first_event as (
    select entering.transaction_id, entering.account_id, entering.related_account_id, entering.transaction_type,
        entering.amount, entering.currency, entering.committed_at, entering.lsn, entering.tx_id, entering.end_lsn,
        entering._loaded_at
    from entering
    {%- if is_incremental() %}
    left join posted on entering.transaction_id = posted.transaction_id
    where (posted.lsn is null or entering.lsn <= posted.lsn) and
    {%- else %}
    where
    {%- endif %}
        (entering.transaction_id, entering.lsn) in (select transaction_id, min(lsn) from entering group by transaction_id)
),

-- leg 1 on account_id (a deposit credits it, anything else debits it), leg 2 of a transfer
-- credits related_account_id
legs as (
    select
        transaction_id,
        l.leg,
        case when l.leg = 1 then account_id else related_account_id end as account_id,
        case when l.leg = 2 or transaction_type = 'DEPOSIT' then amount else -amount end as amount,
        currency, transaction_type, committed_at, lsn, tx_id, end_lsn, _loaded_at
    from first_event
    inner join (select 1 as leg union all select 2) as l on l.leg = 1 or first_event.transaction_type = 'TRANSFER'
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
