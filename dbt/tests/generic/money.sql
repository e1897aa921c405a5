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
    touch (all of them on a full build; on an incremental one those posted to in the latest run,
    see get_where_subquery, and since the last checkpoints, below). Compared by log position, never by time (a snapshot read carries the
    time it was read, not a commit time): the transactions that touch an account are serialised
    by its row lock, and each updates the balance, then inserts its ledger row, so a version's
    balance is the sum of the postings at or before it in the log plus those of its own
    transaction. Accounts and transactions arrive as two streams, each in log order, so each
    account is checked at its last version whose postings are all loaded: one followed by a
    later version at or below the last loaded posting, or one whose own transaction's posting
    is loaded. Accounts start at 0.

    A posting first met as an incremental snapshot's read (changes: op r, snapshot
    'incremental'), or as an update streamed before that snapshot read the row (fct_postings),
    was made while the destination missed changes (another destination held the shared slot):
    its position is where the snapshot (or the update) found it, not where it was made, and
    the accounts are read before the transactions, so the balances read include it at lower
    positions. Its window (windows: raw.snapshot_windows of transactions, the one holding the
    read) names the gap (bronze.Gap): the posting was committed after every change at or below
    gap_from and before every change of its account above gap_to, so it counts for a version
    above gap_to, not for one at or below gap_from. For a version in between, or while the
    window is not loaded yet, its place is unknown and the account is left for a later run
    (a full build checks it again); a read whose window names no gap (a requested snapshot: the
    destination missed nothing) is taken at its read position, so a posting lost from the lake
    still fails. The account's balance is read before those postings: a version at or above an
    incremental read of the account waits until a transactions window closing after the read is
    loaded and within the cut (unless the read's own window names no gap; macros/balances.sql, unplaced_reads). -#}
{% test balances_match_postings(model, accounts, postings, changes, windows) %}
{#- An incremental run checks each account from its checkpoint (silver.balance_checkpoints, built
    after this test, so looked up by name, not ref: macros/balances.sql says when one holds), a
    full build (or --full-refresh, or --vars '{test_all_rows: true}') sums every posting. The
    accounts checked are those this run posted to (model) and those posted to since the
    checkpoints were taken (a build whose test failed took none, so its accounts stay checked
    until a build passes). -#}
{%- set checkpoints = none -%}
{%- set depends_on_cut = ref('cut') -%} {#- read by cut_lsn() -#}
{%- if execute and not var('test_all_rows', false) and not flags.FULL_REFRESH -%}
    {#- silver, beside the history (accounts) -#}
    {%- set checkpoints = adapter.get_relation(database=accounts.database, schema=accounts.schema,
        identifier='balance_checkpoints') -%}
{%- endif -%}
{%- set changed -%}
(select account_id, lsn from {{ model }}
{%- if checkpoints is not none %}
 union all
 select account_id, lsn from {{ postings }}
 where {{ built_at_condition(checkpoints, '>') }}
{%- endif %})
{%- endset %}
with checks as (
{{ balance_checks(changed, changed, accounts, postings, changes, windows, cut_lsn(),
    checkpoints, least_checkpoint_lsn(checkpoints, changed)) }}
)

select account_id, balance, total as sum_of_postings
from checks
where unplaced = 0 and (balance is null or total <> balance or amounts <> postings)
union all
-- a leg without an account
select null, null, sum(amount)
from {{ model }}
where account_id is null
having count(*) > 0
{% endtest %}
