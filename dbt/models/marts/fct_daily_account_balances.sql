{#- One row per account and UTC day, from the day it opened to the last day gold has data for:
    the closing balance (from the account's last version that day) and the day's postings. Days
    without activity carry the balance forward, so BI tools can sum or chart it without a
    calendar join.
    Within the cut, like every gold model: the versions of silver.accounts_in_cut and the postings
    of gold.fct_postings, so a day's closing balance is the sum of its postings in gold and the
    last day is the last one the cut reaches.
    end_lsn and _loaded_at: where the newest of what the row's balance reflects entered gold and
    its newest load, the greatest of the account's closing versions and postings up to that day
    since it last opened (a balance reflects them all), so a quiet day's row is the day before's.

    Incremental: a run rewrites only the accounts with a version or posting that entered gold
    since its last run (touched), each from its own earliest new day (at most the last day held,
    L, as a full refresh of that day would), and carries every other account forward from its
    row on L when the last day advances (one row per account per new day). "Entered since" is
    over-approximated, which only widens what is rewritten: above the newest end_lsn the table
    holds (at or below the cut of its last run), or loaded since its last run (a read loaded
    after the cut passed its position); each is a bound on one column, so the warehouse skips the
    blocks below it. A rewritten account starts from its own row on the day before (its balance,
    and the running end_lsn), so no version or posting older than the first day rewritten is
    read: the cost follows the days and accounts rewritten, not the history. The batch names
    each account it rewrites, from the day it rewrites it, with a row whose account_day_key is
    null (strategy replace_from, macros/incremental.sql): an account's rows from that day on are
    replaced, so a day that no longer has a row (after a delete, or a last day that moved back)
    goes too. -#}
{{ config(materialized='incremental', unique_key='account_day_key', incremental_strategy='replace_from', tmp_relation_type=batch_relation_type(), replace_from='balance_date', replace_key='account_id', on_schema_change='fail') }}

{%- set incremental = is_incremental() -%}
{%- set day = modules.datetime.timedelta(days=1) -%}
{%- set iso = modules.datetime.date.fromisoformat -%}
{%- set bounds = namespace(first=none, last=none, carry_from=none, touched_cap=none) -%}
{%- if incremental and execute -%}
    {#- The newest end_lsn held and the last day held (L). -#}
    {%- set held_row = run_query("select max(end_lsn), cast(max(balance_date) as varchar) from " ~ this).rows -%}
    {%- set held = held_row[0][0] if held_row and held_row[0][0] is not none else -1 -%}
    {%- set held_last = iso(held_row[0][1]) if held_row and held_row[0][1] is not none else none -%}
    {%- set loaded = loaded_since_last_run() -%}
    {#- The accounts touched and each one's earliest new day: each branch bounded by one column. -#}
    {%- set touched -%}
    select account_id, min(entered_at) as first_at
    from (
        select account_id, valid_from as entered_at from ({{ dim_versions() }}) as v where end_lsn > {{ held }}
        union all
        select account_id, valid_from from ({{ dim_versions() }}) as v where {{ loaded }}
        union all
        select account_id, posted_at from {{ ref('fct_postings') }} where end_lsn > {{ held }}
        union all
        select account_id, posted_at from {{ ref('fct_postings') }} where {{ loaded }}
    ) as entered
    group by account_id
    {%- endset -%}
    {#- The last day gold has data for (the full refresh's: the day of the newest version). It is
        among the versions from the last day held on, unless that day's versions went (then read
        them all). -#}
    {%- set newest -%}
    select cast({{ utc_date('max(valid_from)') }} as varchar) from ({{ dim_versions() }}) as v
    {%- endset -%}
    {%- set found = run_query("select cast(" ~ utc_date('min(first_at)') ~ " as varchar), ("
        ~ newest ~ (" where valid_from >= " ~ utc_midnight(held_last) if held_last is not none else "")
        ~ ") from (" ~ touched ~ ") as t").rows[0] -%}
    {%- set bounds.last = iso(found[1]) if found[1] is not none else none -%}
    {%- if bounds.last is none and held_last is not none -%}
        {%- set bounds.last = run_query(newest).columns[0].values()[0] -%}
        {%- set bounds.last = iso(bounds.last) if bounds.last is not none else none -%}
    {%- endif -%}
    {%- if bounds.last is not none -%}
        {#- Untouched accounts change only after min(L, last day): carried forward when the last
            day advances, cut back when it moved back. Touched ones are rewritten from L at the
            latest, as a full refresh rewrites that day (no later than the day after the last). -#}
        {%- set bounds.carry_from = ([held_last, bounds.last] | min) + day if held_last is not none else bounds.last + day -%}
        {%- set bounds.touched_cap = ([held_last, bounds.last + day] | min) if held_last is not none else bounds.last + day -%}
        {%- set new_first = iso(found[0]) if found[0] is not none else none -%}
        {%- set bounds.first = ([new_first, bounds.touched_cap] | min) if new_first is not none
            else (bounds.carry_from if held_last is not none and bounds.last != held_last else none) -%}
    {%- endif -%}
{%- endif %}

with
{%- if incremental %}

-- Each account rewritten, and the day it is rewritten from.
starts as (
    {%- if bounds.first is none %}
    select cast(null as {{ dbt.type_string() }}) as account_id, cast(null as date) as from_date where false
    {%- else %}
    select account_id, min(from_date) as from_date
    from (
        select account_id, least({{ utc_date('first_at') }}, {{ date_literal(bounds.touched_cap) }}) as from_date
        from ({{ touched }}) as t
        {%- if bounds.last != held_last %}
        union all
        -- every account with a row on L, or after the last day when it moved back
        select account_id, {{ date_literal(bounds.carry_from) }}
        from {{ this }}
        where balance_date >= {{ date_literal(bounds.carry_from - day) }}
        {%- endif %}
    ) as s
    group by account_id
    {%- endif %}
),

-- Each one's row on the day before: its state then, carried in.
seeds as (
    select d.account_id, d.balance_date, d.closing_balance as balance, d.currency, d.status,
        false as is_deleted, d.end_lsn, d._loaded_at, s.from_date
    from {{ this }} as d
    inner join starts as s on d.account_id = s.account_id and d.balance_date = s.from_date - 1
    {%- if bounds.first is not none %}
    where d.balance_date >= {{ date_literal(bounds.first - day) }}
    {%- endif %}
),
{%- endif %}

closing as (
    select
        v.account_id,
        {{ utc_date('v.valid_from') }} as balance_date,
        v.balance,
        v.currency,
        v.status,
        -- a delete is a closing state too: the account's days end there
        v.is_deleted,
        v.end_lsn,
        v._loaded_at
        {%- if incremental %},
        s.from_date
        {%- endif %}
    from ({{ dim_versions() }}) as v
    {%- if incremental %}
    inner join starts as s on v.account_id = s.account_id
    where v.valid_from >= {{ utc_midnight(bounds.first) if bounds.first is not none else utc_midnight('1970-01-01') }}
        and {{ utc_date('v.valid_from') }} >= s.from_date
    {%- endif %}
    qualify row_number() over (
        partition by v.account_id, {{ utc_date('v.valid_from') }} order by v.lsn desc) = 1
    {%- if incremental %}
    union all
    select * from seeds
    {%- endif %}
),

-- Each closing balance holds until the account's next day with a change; life counts the
-- deletes before it (the running end_lsn starts again when an account opens again).
closing_until as (
    select
        closing.*,
        lead(balance_date) over (partition by account_id order by balance_date) as next_change_date,
        coalesce(sum(case when is_deleted then 1 else 0 end) over (partition by account_id order by balance_date
            rows between unbounded preceding and 1 preceding), 0) as life
    from closing
),

daily_postings as (
    select
        p.account_id,
        {{ utc_date('p.posted_at') }} as balance_date,
        sum(case when p.amount > 0 then p.amount else 0 end) as credits,
        sum(case when p.amount < 0 then -p.amount else 0 end) as debits,
        count(*) as postings,
        max(p.end_lsn) as end_lsn,
        max(p._loaded_at) as _loaded_at
    from {{ ref('fct_postings') }} as p
    {%- if incremental %}
    inner join starts as s on p.account_id = s.account_id
    where p.posted_at >= {{ utc_midnight(bounds.first) if bounds.first is not none else utc_midnight('1970-01-01') }}
        and {{ utc_date('p.posted_at') }} >= s.from_date
    {%- endif %}
    group by 1, 2
),

span as (
    select
        {% if incremental -%}
        {{ date_literal(bounds.first - day) if bounds.first is not none else 'cast(null as date)' }}
        {%- else -%}
        (select min(balance_date) from closing)
        {%- endif %} as first_date,
        {% if incremental -%}
        {{ date_literal(bounds.last) if bounds.last is not none else 'cast(null as date)' }}
        {%- else -%}
        (select {{ utc_date('max(valid_from)') }} from ({{ dim_versions() }}) as v)
        {%- endif %} as last_date
),

days as (
    select date_day from {{ days_between('span', 'span.first_date', 'span.last_date') }} as d
),

account_days as (
    select
        c.account_id,
        days.date_day,
        c.balance,
        c.currency,
        c.status,
        c.life,
        {%- if incremental %}
        c.from_date,
        {%- endif %}
        p.credits,
        p.debits,
        p.postings,
        case when p.end_lsn > c.end_lsn then p.end_lsn else c.end_lsn end as end_lsn,
        case when p._loaded_at > c._loaded_at then p._loaded_at else c._loaded_at end as _loaded_at
    from closing_until as c
    inner join days
        on days.date_day >= c.balance_date
        and (c.next_change_date is null or days.date_day < c.next_change_date)
    left join daily_postings as p
        on c.account_id = p.account_id and days.date_day = p.balance_date
    where not c.is_deleted
),

balances as (
    select
        account_id || '@' || cast(date_day as varchar) as account_day_key,
        account_id,
        date_day as balance_date,
        balance as closing_balance,
        currency,
        status,
        cast(coalesce(credits, 0) as {{ money_type() }}) as credits,
        cast(coalesce(debits, 0) as {{ money_type() }}) as debits,
        coalesce(postings, 0) as postings,
        max(end_lsn) over (partition by account_id, life order by date_day rows between unbounded preceding and current row) as end_lsn,
        max(_loaded_at) over (partition by account_id, life order by date_day rows between unbounded preceding and current row) as _loaded_at,
        {{ built_at() }} as _built_at
        {%- if incremental %},
        from_date
        {%- endif %}
    from account_days
)

select account_day_key, account_id, balance_date, closing_balance, currency, status, credits, debits,
    postings, end_lsn, _loaded_at, _built_at
from balances
{%- if incremental %}
-- the days before an account's first rewritten day were its carried-in row
where balance_date >= from_date
union all
select cast(null as {{ dbt.type_string() }}), account_id, from_date, null, null, null, null, null, null, null, null, null
from starts
{%- endif %}
-- by day, so the next run's reads of the last days skip the blocks before them
order by balance_date
