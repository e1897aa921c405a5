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
    get_where_subquery). Accounts and transactions arrive as two streams, so they are compared at
    the last commit time both have reached: the balance of the account's last version committed
    by then, against all its postings committed by then (a transaction's balance updates and
    ledger row share one commit time). Accounts start at 0. -#}
{% test balances_match_postings(model, accounts, postings) %}
with affected as (
    select distinct account_id from {{ model }}
),

reached as (
    select least(
        (select max(committed_at) from {{ accounts }}),
        (select max(posted_at) from {{ postings }})) as at_time
),

-- The account's last version by then: a grouped max rather than a window over every version of
-- every affected account (an account's versions have distinct lsns: version_key is unique).
last_version as (
    select a.account_id, max(a.lsn) as lsn
    from {{ accounts }} as a
    cross join reached
    where a.committed_at <= reached.at_time and not a.is_deleted
        and a.account_id in (select account_id from affected)
    group by a.account_id
),

balances as (
    select a.account_id, a.balance
    from {{ accounts }} as a
    inner join last_version as l on a.account_id = l.account_id and a.lsn = l.lsn
),

posted as (
    select p.account_id, sum(p.amount) as total, count(p.amount) as amounts, count(*) as postings
    from {{ postings }} as p
    cross join reached
    where p.posted_at <= reached.at_time
        and (p.account_id in (select account_id from affected) or p.account_id is null)
    group by p.account_id
)

select
    coalesce(b.account_id, p.account_id) as account_id,
    b.balance,
    p.total as sum_of_postings
from balances as b
full outer join posted as p on b.account_id = p.account_id
where b.balance is null
   or coalesce(p.total, 0) <> b.balance
   or coalesce(p.amounts, 0) <> coalesce(p.postings, 0)
{% endtest %}
