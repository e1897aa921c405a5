{#- Each affected account's balance beside the sum of its postings, at its last version whose
    postings are all loaded (the rules: balances_match_postings in tests/generic/money.sql). One
    row per account checked: account_id, lsn, tx_id and balance of the version checked; total,
    amounts and postings (the sum, and how many of the postings counted have an amount); unplaced
    (postings whose place relative to the version is unknown yet: the account is left for a later
    run); counted_to (the highest lsn counted); first_lsn (the least version of the account known:
    its first version is at or below it).

    accounts is the history (silver.accounts_history), read up to the cut's position cut (a
    constant): gold's postings are the cut's, and a version the rules check is then always in the
    cut (its postings are loaded, so its transaction committed before one the cut holds). Read
    as a table, its blocks below the positions sought are skipped; the dim_accounts view would
    rebuild every version of every account first.

    checkpoints (a relation or none) holds such a row per account from the last build whose test
    passed (silver.balance_checkpoints). total is a sum of postings, never a balance, so an account
    whose checkpoint still holds is checked by adding to it the postings above it: the run reads
    the new slice of the ledger and of the history (from from_lsn, a constant: the least
    checkpoint position of the affected accounts) instead of all of it. A checkpoint holds while
    nothing it counted can have changed: no posting written since it was taken (changed) sits at
    or below its version or counted_to (a late event, or a posting replaced by an earlier read,
    always lands there), no posting of the account above it is a snapshot read (or update)
    placed by its gap (it may count below the checkpoint), and the account has a version to
    check at or above it.
    Any other account is summed over all its postings. -#}
{% macro balance_checks(affected, changed, accounts, postings, changes, windows, cut, checkpoints=none, from_lsn=-1) %}
with affected as (
    select distinct account_id from {{ affected }}
),

loaded as (
    select max(lsn) as lsn from {{ postings }}
),

-- the events a posting made in a gap can sit at: an incremental snapshot's read, or an update of
-- a transaction whose insert the destination missed, streamed before that snapshot read it
-- (fct_postings). Only those a posting sits at (its first event) match the postings below.
reads as (
    select distinct transaction_id, lsn, op from {{ changes }}
    where (op = 'r' and snapshot = 'incremental') or op = 'u'
),

-- grouped joins, not a `not exists` correlated on an inequality (evaluated per checkpoint)
prior as (
{%- if checkpoints is not none %}
    select k.account_id, k.lsn, k.tx_id, k.total, k.counted_to
    from {{ checkpoints }} as k
    -- per account, the least position among the postings written since the checkpoints were taken
    left join (
        select account_id, min(lsn) as lsn from {{ changed }} group by account_id
    ) as n on k.account_id = n.account_id
    -- per account, the highest of its postings above from_lsn that sits at an incremental
    -- snapshot's read or an update (reads: the incremental reads and the reversals; an empty set
    -- ends the join before it reads the postings)
    left join (
        select p.account_id, max(p.lsn) as lsn
        from {{ postings }} as p
        inner join reads as r on p.transaction_id = r.transaction_id and p.lsn = r.lsn
        where p.lsn > {{ from_lsn }}
        group by p.account_id
    ) as g on k.account_id = g.account_id
    where k.account_id in (select account_id from affected)
        and (n.lsn is null or n.lsn > greatest(k.lsn, coalesce(k.counted_to, k.lsn)))
        and (g.lsn is null or g.lsn <= k.lsn)
{%- else %}
    select account_id, lsn, tx_id, total, counted_to from (select
        cast(null as {{ dbt.type_string() }}) as account_id, cast(null as bigint) as lsn,
        cast(null as bigint) as tx_id, cast(null as decimal(18, 2)) as total,
        cast(null as bigint) as counted_to) as none_yet
    where false
{%- endif %}
),

-- where a checkpoint holds: the versions at or above it, the last one whose postings are loaded
versions_above as (
    select
        a.account_id, a.lsn, a.tx_id, a.balance, a.is_deleted,
        lead(a.lsn) over (partition by a.account_id order by a.lsn) as next_lsn
    from {{ accounts }} as a
    inner join prior as k on a.account_id = k.account_id and a.lsn >= k.lsn
    where a.lsn >= {{ from_lsn }} and a.lsn <= {{ cut }}
),

postings_above as (
    select p.account_id, p.amount, p.lsn, p.tx_id, p.posting_key
    from {{ postings }} as p
    inner join prior as k on p.account_id = k.account_id and p.lsn > k.lsn
    where p.lsn > {{ from_lsn }}
),

checked_above as (
    select v.account_id, v.lsn, v.tx_id, v.balance
    from versions_above as v
    cross join loaded
    left join (select distinct account_id, tx_id from postings_above) as o
        on v.account_id = o.account_id and v.tx_id = o.tx_id
    where not v.is_deleted and (v.next_lsn <= loaded.lsn or o.tx_id is not null)
    qualify row_number() over (partition by v.account_id order by v.lsn desc) = 1
),

-- the checkpoint plus what was posted above it and counts at the version checked. The postings
-- are joined on the account alone and what counts is chosen in the sums: with that condition in
-- the join (an `or`) DuckDB compared every version with every posting above the checkpoints in
-- a nested loop.
from_checkpoint as (
    select
        account_id, lsn, tx_id, balance,
        total + coalesce(sum(case when counts then amount end), 0) as total,
        count(case when counts then amount end) as amounts,
        count(case when counts then posting_key end) as postings,
        0 as unplaced,
        -- greatest is null on Snowflake when either side is
        coalesce(greatest(max(case when counts then posting_lsn end), counted_to),
            max(case when counts then posting_lsn end), counted_to) as counted_to
    from (
        select c.account_id, c.lsn, c.tx_id, c.balance, k.total, k.counted_to,
            p.amount, p.posting_key, p.lsn as posting_lsn,
            not coalesce(p.tx_id = k.tx_id, false) and (p.lsn <= c.lsn or p.tx_id = c.tx_id) as counts
        from checked_above as c
        inner join prior as k on c.account_id = k.account_id
        left join postings_above as p on p.account_id = c.account_id
    ) as above
    group by account_id, lsn, tx_id, balance, total, counted_to
),

-- every other account: all its versions and all its postings
rest as (
    select account_id from affected
    where account_id not in (select account_id from checked_above)
),

versions as (
    select
        a.account_id, a.lsn, a.tx_id, a.balance, a.is_deleted,
        lead(a.lsn) over (partition by a.account_id order by a.lsn) as next_lsn
    from {{ accounts }} as a
    where a.account_id in (select account_id from rest) and a.lsn <= {{ cut }}
),

own_postings as (
    select distinct account_id, tx_id from {{ postings }}
    where account_id in (select account_id from rest)
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
-- windows' ranges), and each update with the first loaded window after whose gap it was streamed
-- (an update that is a posting's first event comes before that window's chunks read its row, at
-- the latest in the window of the chunk that dropped it): deduplicated here, on the few reads,
-- not on the postings after the join, which held every posting of the accounts summed in full
-- in memory at once
read_windows as (
    select r.transaction_id, r.lsn, g.close_lsn, g.gap_from, g.gap_to
    from reads as r
    left join gaps as g on r.lsn <= g.close_lsn
        and ((r.op = 'r' and r.lsn >= g.open_lsn) or (r.op = 'u' and r.lsn > g.gap_to))
    qualify row_number() over (partition by r.transaction_id, r.lsn order by g.close_lsn) = 1
),

-- each posting of an account summed in full with where it may sit: at lsn, or (a read made in a
-- gap) anywhere from gap_from (exclusive) to gap_to; unknown (null) while its window is not loaded
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

in_full as (
    select
        c.account_id, c.lsn, c.tx_id, c.balance,
        coalesce(sum(case when p.lsn <= c.lsn or p.tx_id = c.tx_id or p.by_lsn < c.lsn then p.amount end), 0) as total,
        count(case when p.lsn <= c.lsn or p.tx_id = c.tx_id or p.by_lsn < c.lsn then p.amount end) as amounts,
        count(case when p.lsn <= c.lsn or p.tx_id = c.tx_id or p.by_lsn < c.lsn then 1 end) as postings,
        count(case when p.lsn > c.lsn and p.tx_id <> c.tx_id
            and (p.after_lsn is null or (p.after_lsn < c.lsn and p.by_lsn >= c.lsn)) then 1 end) as unplaced,
        max(case when p.lsn <= c.lsn or p.tx_id = c.tx_id or p.by_lsn < c.lsn then p.lsn end) as counted_to
    from checked as c
    left join placed as p on p.account_id = c.account_id
    group by c.account_id, c.lsn, c.tx_id, c.balance
),

-- An account's balance read by an incremental snapshot that repairs a gap (a version of its own
-- only when the row changed while the destination missed changes) holds the postings made in the
-- gap, which the snapshot reads later, with the transactions: until a transactions window closing
-- after that read is loaded and within the cut (gold's postings are the cut's), they may not all
-- be there, and neither that version nor a later one can be checked (66-lost-lake.sh under load: a build between a streamed posting of such an
-- account and the gap's postings failed for 29 accounts). A read whose own accounts window is
-- loaded and names no gap (a requested snapshot: nothing was missed) is checked at once.
-- The same holds from a streamed update whose before image is not the account's version before
-- it (or that is the account's first event: its insert was missed): the row changed where the
-- destination did not see it. An account changed after the gap but before its chunk is read is
-- re-read unchanged (no version), so such an update is the first to hold the gap's postings, and
-- no window may be loaded yet (66-lost-lake.sh with landing batches of 10,000: 82 accounts failed
-- in a build that ran before the gap's first window was loaded; check.py's
-- gap_streamed_balances). The versions compared start at from_lsn: the first one in range has
-- no previous one there, and counts only when it is the account's first (first_versions).
account_versions as (
    select
        a.account_id, a.lsn, a.op, a.snapshot,
        lag(a.balance) over (partition by a.account_id order by a.lsn) as previous_balance,
        row_number() over (partition by a.account_id order by a.lsn) = 1 as first_in_range
    from {{ accounts }} as a
    where a.lsn >= {{ from_lsn }} and a.lsn <= {{ cut }}
        and a.account_id in (select account_id from affected)
),

-- A version of each affected account the checkpoints know (first_lsn: the least they saw): the
-- account's first version is at or below it, since an account's first event by lsn is always a
-- version, and events are never removed (a late one only moves the first version down).
known_first as (
{%- if checkpoints is not none %}
    select account_id, first_lsn as lsn from {{ checkpoints }}
    where account_id in (select account_id from affected) and first_lsn is not null
{%- else %}
    select account_id, lsn from (select cast(null as {{ dbt.type_string() }}) as account_id,
        cast(null as bigint) as lsn) as none_yet
    where false
{%- endif %}
),

-- the first version of each account whose first update in range may be it: not one with a
-- version known below that update (every account checked before, in a later build), so the
-- history is read below from_lsn only for the few others, not for every version of every
-- affected account (grouped, not a `not exists` correlated on an inequality)
first_versions as (
    select account_id, min(lsn) as lsn from {{ accounts }}
    where lsn <= {{ cut }} and account_id in (
        select v.account_id
        from account_versions as v
        left join known_first as k on v.account_id = k.account_id
        where v.first_in_range and v.op = 'u' and (k.lsn is null or k.lsn >= v.lsn))
    group by account_id
),

-- what the checkpoints keep as first_lsn: the least version known of each account
first_known as (
    select account_id, min(lsn) as lsn from (
        select account_id, lsn from known_first
        union all
        select account_id, lsn from account_versions where first_in_range
        union all
        select account_id, lsn from first_versions
    ) as known
    group by account_id
),

streamed_updates as (
    select {{ json_text(quoted('after'), 'account_id') }} as account_id, lsn,
        cast({{ json_text(quoted('before'), 'balance') }} as decimal(18, 2)) as before_balance
    from {{ source('raw', 'accounts') }}
    -- the versions' positions first: the row images are parsed for those events only
    where op = 'u' and lsn >= {{ from_lsn }} and lsn <= {{ cut }}
        and lsn in (select lsn from account_versions where op = 'u')
),

account_reads as (
    select a.account_id, a.lsn
    from {{ accounts }} as a
    where a.op = 'r' and a.snapshot = 'incremental' and a.lsn <= {{ cut }}
        and a.account_id in (select account_id from affected)
    union all
    select v.account_id, v.lsn
    from account_versions as v
    inner join streamed_updates as u on v.account_id = u.account_id and v.lsn = u.lsn
    left join first_versions as f on v.account_id = f.account_id
    where v.op = 'u' and (v.previous_balance <> u.before_balance or v.lsn = f.lsn)
),

read_windows_of_accounts as (
    select
        source_table,
        cast({{ json_text(quoted('after'), 'open_lsn') }} as bigint) as open_lsn,
        lsn as close_lsn,
        cast({{ json_text(quoted('after'), 'gap_from_lsn') }} as bigint) as gap_from
    from {{ windows }}
    where source_schema = 'public' and source_table in ('accounts', 'transactions')
),

unplaced_reads as (
    select r.account_id, min(r.lsn) as lsn
    from account_reads as r
    left join read_windows_of_accounts as w
        on (w.source_table = 'transactions' and w.close_lsn > r.lsn and w.close_lsn <= {{ cut }})
        or (w.source_table = 'accounts' and w.gap_from is null and r.lsn >= w.open_lsn and r.lsn <= w.close_lsn)
    where w.close_lsn is null
    group by r.account_id
),

checked_versions as (
    select account_id, lsn, tx_id, balance, total, amounts, postings, unplaced, counted_to from from_checkpoint
    union all
    select account_id, lsn, tx_id, balance, total, amounts, postings, unplaced, counted_to from in_full
)

select
    c.account_id, c.lsn, c.tx_id, c.balance, c.total, c.amounts, c.postings,
    c.unplaced + case when u.lsn <= c.lsn then 1 else 0 end as unplaced,
    c.counted_to,
    f.lsn as first_lsn
from checked_versions as c
left join unplaced_reads as u on c.account_id = u.account_id
left join first_known as f on c.account_id = f.account_id
{% endmacro %}

{#- The least checkpoint position among the accounts posted to in affected (a relation or
    subquery), as a constant the warehouse can skip blocks with; -1 without checkpoints. -#}
{% macro least_checkpoint_lsn(checkpoints, affected) -%}
    {%- if execute and checkpoints is not none -%}
        {%- set found = run_query("select min(lsn) from " ~ checkpoints ~ " where account_id in (select account_id from "
            ~ affected ~ ")") -%}
        {%- set lsn = found.columns[0].values()[0] if found.rows | length > 0 else none -%}
        {{- return(lsn if lsn is not none else -1) -}}
    {%- endif -%}
    {{- return(-1) -}}
{%- endmacro %}
