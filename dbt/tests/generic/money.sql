{#- The ledger's money invariants, as generic tests so they sit next to the models they check. -#}

{#- Every transfer has exactly two legs, on two different accounts, netting to zero; every other
    transaction has one. Fails with the transaction and what is wrong with it. -#}
{% test transfer_legs_net_to_zero(model, postings) %}
with tested as (
    select transaction_id, transaction_type from {{ model }}
),

legs as (
    select
        transaction_id,
        count(*) as leg_count,
        count(account_id) as legs_with_account,
        count(distinct account_id) as accounts,
        count(amount) as legs_with_amount,
        sum(amount) as net
    from {{ postings }}
    where transaction_id in (select transaction_id from tested)
    group by transaction_id
)
select t.transaction_id, t.transaction_type, legs.leg_count, legs.accounts, legs.net
from tested as t
left join legs on t.transaction_id = legs.transaction_id
where legs.transaction_id is null
   or (t.transaction_type = 'TRANSFER' and (
        legs.leg_count <> 2 or legs.legs_with_account <> 2 or legs.accounts <> 2
        or legs.legs_with_amount <> 2 or legs.net <> 0))
   or (t.transaction_type <> 'TRANSFER' and (legs.leg_count <> 1 or legs.legs_with_amount <> 1))
{% endtest %}

{#- Each account's balance equals the sum of its postings, for the accounts the tested postings
    touch (all of them on a full build; those posted to in the latest run otherwise, see
    get_where_subquery). Compared by log position, never by time (a snapshot read carries the
    time it was read, not a commit time): the transactions that touch an account are serialised
    by its row lock, and each updates the balance, then inserts its ledger row, so a version's
    balance is the sum of the postings at or before it in the log plus those of its own
    transaction. Accounts and transactions arrive as two streams, each in log order, so each
    account is checked at its last version whose postings are all loaded: one followed by a
    later version at or below the last loaded posting, or one whose own transaction's posting
    is loaded. Accounts start at 0.

    A posting first met as an incremental snapshot's read (changes: op r, snapshot
    'incremental') was made while the destination missed changes (another destination held the
    shared slot): its read position is where the snapshot found it, not where it was made, and
    the accounts are read before the transactions, so the balances read include it at lower
    positions. Its window (windows: raw.snapshot_windows of transactions, the one holding the
    read) names the gap (bronze.Gap): the posting was committed after every change at or below
    gap_from and before every change of its account above gap_to, so it counts for a version
    above gap_to, not for one at or below gap_from. For a version in between, or while the
    window is not loaded yet, its place is unknown and the account is left for a later run
    (a full build checks it again); a read whose window names no gap (a requested snapshot: the
    destination missed nothing) is taken at its read position, so a posting lost from the lake
    still fails. -#}
{% test balances_match_postings(model, accounts, postings, changes, windows) %}
with affected as (
    select distinct account_id from {{ model }}
),

loaded as (
    select max(lsn) as lsn from {{ postings }}
),

versions as (
    select
        a.account_id, a.lsn, a.tx_id, a.balance, a.is_deleted,
        lead(a.lsn) over (partition by a.account_id order by a.lsn) as next_lsn
    from {{ accounts }} as a
    where a.account_id in (select account_id from affected)
),

own_postings as (
    select distinct account_id, tx_id from {{ postings }}
    where account_id in (select account_id from affected)
),

checked as (
    select v.account_id, v.lsn, v.tx_id, v.balance
    from versions as v
    cross join loaded
    left join own_postings as o on v.account_id = o.account_id and v.tx_id = o.tx_id
    where not v.is_deleted and (v.next_lsn <= loaded.lsn or o.tx_id is not null)
    qualify row_number() over (partition by v.account_id order by v.lsn desc) = 1
),

gaps as (
    select distinct
        cast({{ json_text(quoted('after'), 'open_lsn') }} as bigint) as open_lsn,
        lsn as close_lsn,
        cast({{ json_text(quoted('after'), 'gap_from_lsn') }} as bigint) as gap_from,
        cast({{ json_text(quoted('after'), 'gap_to_lsn') }} as bigint) as gap_to
    from {{ windows }}
    where source_schema = 'public' and source_table = 'transactions'
),

-- each incremental read with the first loaded window holding it (a read can sit in several
-- windows' ranges): deduplicated here, on the few reads, and not on the postings after the join,
-- which held every posting of the checked accounts in memory at once
read_windows as (
    select r.transaction_id, r.lsn, g.close_lsn, g.gap_from, g.gap_to
    from (
        select distinct transaction_id, lsn from {{ changes }} where op = 'r' and snapshot = 'incremental'
    ) as r
    left join gaps as g on r.lsn >= g.open_lsn and r.lsn <= g.close_lsn
    qualify row_number() over (partition by r.transaction_id, r.lsn order by g.close_lsn) = 1
),

-- each posting of a checked account with where it may sit: at lsn, or (a read made in a gap)
-- anywhere from gap_from (exclusive) to gap_to; unknown (null) while its window is not loaded
placed as (
    select
        p.account_id, p.amount, p.lsn, p.tx_id,
        case when w.transaction_id is null then p.lsn when w.close_lsn is null then null
            else coalesce(w.gap_from, p.lsn) end as after_lsn,
        case when w.transaction_id is null then p.lsn when w.close_lsn is null then null
            else coalesce(w.gap_to, p.lsn) end as by_lsn
    from {{ postings }} as p
    left join read_windows as w on p.transaction_id = w.transaction_id and p.lsn = w.lsn
    where p.account_id in (select account_id from checked)
),

posted as (
    select
        c.account_id,
        sum(case when p.lsn <= c.lsn or p.tx_id = c.tx_id or p.by_lsn < c.lsn then p.amount end) as total,
        count(case when p.lsn <= c.lsn or p.tx_id = c.tx_id or p.by_lsn < c.lsn then p.amount end) as amounts,
        count(case when p.lsn <= c.lsn or p.tx_id = c.tx_id or p.by_lsn < c.lsn then 1 end) as postings,
        count(case when p.lsn > c.lsn and p.tx_id <> c.tx_id
            and (p.after_lsn is null or (p.after_lsn < c.lsn and p.by_lsn >= c.lsn)) then 1 end) as unplaced
    from checked as c
    inner join placed as p on p.account_id = c.account_id
    group by c.account_id
)

select c.account_id, c.balance, p.total as sum_of_postings
from checked as c
left join posted as p on c.account_id = p.account_id
where coalesce(p.unplaced, 0) = 0 and (
    c.balance is null
    or coalesce(p.total, 0) <> c.balance
    or coalesce(p.amounts, 0) <> coalesce(p.postings, 0))
union all
-- a leg without an account
select null, null, sum(amount)
from {{ model }}
where account_id is null
having count(*) > 0
{% endtest %}
