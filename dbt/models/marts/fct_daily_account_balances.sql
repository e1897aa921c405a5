{#- One row per account and UTC day, from the day it opened to the last day the warehouse has
    data for: the closing balance (from the account's last version that day) and the day's
    postings. Days without activity carry the balance forward, so BI tools can sum or chart it
    without a calendar join. Built whole each run: it is days x accounts, small beside the
    ledger, and a day's row depends on every earlier day of its account. -#}
{{ config(materialized='table') }}

with closing as (
    select
        account_id,
        {{ utc_date('valid_from') }} as balance_date,
        balance,
        currency,
        status
    from {{ ref('accounts_history') }}
    where not is_deleted
    qualify row_number() over (
        partition by account_id, {{ utc_date('valid_from') }} order by lsn desc, kafka_offset desc) = 1
),

-- Each closing balance holds until the account's next day with a change.
closing_until as (
    select
        closing.*,
        lead(balance_date) over (partition by account_id order by balance_date) as next_change_date
    from closing
),

daily_postings as (
    select
        account_id,
        {{ utc_date('posted_at') }} as balance_date,
        sum(case when amount > 0 then amount else 0 end) as credits,
        sum(case when amount < 0 then -amount else 0 end) as debits,
        count(*) as postings
    from {{ ref('fct_postings') }}
    group by 1, 2
),

span as (
    select min(balance_date) as first_date, max(balance_date) as last_date from closing
),

days as (
    select date_day from {{ days_between('span', 'span.first_date', 'span.last_date') }} as d
)

select
    c.account_id || '@' || cast(days.date_day as varchar) as account_day_key,
    c.account_id,
    days.date_day as balance_date,
    c.balance as closing_balance,
    c.currency,
    c.status,
    cast(coalesce(p.credits, 0) as {{ money_type() }}) as credits,
    cast(coalesce(p.debits, 0) as {{ money_type() }}) as debits,
    coalesce(p.postings, 0) as postings
from closing_until as c
inner join days
    on days.date_day >= c.balance_date
    and (c.next_change_date is null or days.date_day < c.next_change_date)
left join daily_postings as p
    on c.account_id = p.account_id and days.date_day = p.balance_date
