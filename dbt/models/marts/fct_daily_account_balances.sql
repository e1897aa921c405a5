{#- One row per account and UTC day, from the day it opened to the last day gold has data for:
    the closing balance (from the account's last version that day) and the day's postings. Days
    without activity carry the balance forward, so BI tools can sum or chart it without a
    calendar join.
    Within the cut, like every gold model: the versions of gold.dim_accounts (history_in_cut) and
    the postings of gold.fct_postings, so a day's closing balance is the sum of its postings in
    gold and the last day is the last one the cut reaches.
    Incremental: a run recomputes every account's days from the earliest day of a version or
    posting that entered gold since its last run (usually today), or from the last day it already
    holds if that is earlier (so the quiet days between that day and new data are carried forward
    as a full refresh does). "Entered since" is over-approximated, which only widens the days
    recomputed: above the newest end_lsn the table holds (where what a row reflects entered gold;
    at or below the cut of its last run), or loaded since its last run (a read loaded after the
    cut passed its position). A version waiting behind an earlier one of its key enters with it,
    on a later or the same day. -#}
{{ config(materialized='incremental', unique_key='account_day_key', incremental_strategy='replace_from', tmp_relation_type=batch_relation_type(), replace_from='balance_date', on_schema_change='fail') }}

{%- set held = own_max('end_lsn', -1) -%}
{%- set entered = "(end_lsn > " ~ held ~ " or " ~ loaded_since_last_run() ~ ")" -%}
{%- set from_date = none -%}
{%- if is_incremental() and execute -%}
    {%- set earliest -%}
        with versions as ({{ dim_versions() }})
        select cast(case when min(d) is not null
            then least(min(d), coalesce((select max(balance_date) from {{ this }}), min(d))) end as varchar)
        from (
            select min({{ utc_date('valid_from') }}) as d from versions
            where {{ entered }}
            union all
            select min({{ utc_date('posted_at') }}) from {{ ref('fct_postings') }}
            where {{ entered }}
        ) as new_days
    {%- endset -%}
    {%- set from_date = run_query(earliest).columns[0].values()[0] -%}
{%- endif %}
{#- Midnight UTC of from_date as an instant: "the UTC date of t >= from_date" is "t >= this",
    which compares the column as stored instead of converting 2 M timestamps to dates each run
    (and does not depend on the session time zone, which is not UTC on Snowflake). -#}
{%- set from_instant = "cast('" ~ from_date ~ "T00:00:00Z' as " ~ instant_type() ~ ")" if from_date is not none else none %}

with versions as (
    {{ dim_versions() }}
),

closing as (
    select
        account_id,
        {{ utc_date('valid_from') }} as balance_date,
        balance,
        currency,
        status,
        -- a delete is a closing state too: the account's days end there
        is_deleted,
        end_lsn,
        _loaded_at
    from versions
    {%- if is_incremental() %}
        {%- if from_date is none %}
    where false  -- nothing new was loaded
        {%- else %}
    -- the versions still valid on or after the first day to recompute
    where valid_to is null or valid_to >= {{ from_instant }}
        {%- endif %}
    {%- endif %}
    qualify row_number() over (
        partition by account_id, {{ utc_date('valid_from') }} order by lsn desc) = 1
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
        count(*) as postings,
        max(end_lsn) as end_lsn,
        max(_loaded_at) as _loaded_at
    from {{ ref('fct_postings') }}
    {%- if from_date is not none %}
    where posted_at >= {{ from_instant }}
    {%- endif %}
    group by 1, 2
),

span as (
    select
        {% if from_date is none -%}
        (select min(balance_date) from closing)
        {%- else -%}
        cast('{{ from_date }}' as date)
        {%- endif %} as first_date,
        (select {{ utc_date('max(valid_from)') }} from versions) as last_date
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
    coalesce(p.postings, 0) as postings,
    -- where the newest of what this row reflects entered gold, and its newest load: the next
    -- run's bounds
    case when p.end_lsn > c.end_lsn then p.end_lsn else c.end_lsn end as end_lsn,
    case when p._loaded_at > c._loaded_at then p._loaded_at else c._loaded_at end as _loaded_at,
    {{ built_at() }} as _built_at
from closing_until as c
inner join days
    on days.date_day >= c.balance_date
    and (c.next_change_date is null or days.date_day < c.next_change_date)
left join daily_postings as p
    on c.account_id = p.account_id and days.date_day = p.balance_date
where not c.is_deleted
