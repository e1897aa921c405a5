{#- One row per account and UTC day, from the day it opened to the last day the warehouse has
    data for: the closing balance (from the account's last version that day) and the day's
    postings. Days without activity carry the balance forward, so BI tools can sum or chart it
    without a calendar join.
    Incremental: a run recomputes every account's days from the earliest day that newly loaded
    versions or postings fall on (usually today), or from the last day it already holds if that
    is earlier (so the quiet days between that day and new data are carried forward as a full
    refresh does), reading only the versions still valid then. -#}
{{ config(materialized='incremental', unique_key='account_day_key', incremental_strategy='replace_from', tmp_relation_type=batch_relation_type(), replace_from='balance_date', on_schema_change='fail') }}

{%- set from_date = none -%}
{%- if is_incremental() and execute -%}
    {%- set earliest -%}
        select cast(case when min(d) is not null
            then least(min(d), coalesce((select max(balance_date) from {{ this }}), min(d))) end as varchar)
        from (
            select min({{ utc_date('valid_from') }}) as d from {{ ref('accounts_history') }}
            where {{ loaded_since_last_run() }}
            union all
            select min({{ utc_date('posted_at') }}) from {{ ref('fct_postings') }}
            where {{ loaded_since_last_run() }}
        ) as new_days
    {%- endset -%}
    {%- set from_date = run_query(earliest).columns[0].values()[0] -%}
{%- endif %}
{#- Midnight UTC of from_date as an instant: "the UTC date of t >= from_date" is "t >= this",
    which compares the column as stored instead of converting 2 M timestamps to dates each run
    (and does not depend on the session time zone, which is not UTC on Snowflake). -#}
{%- set from_instant = "cast('" ~ from_date ~ "T00:00:00Z' as " ~ instant_type() ~ ")" if from_date is not none else none %}

with closing as (
    select
        account_id,
        {{ utc_date('valid_from') }} as balance_date,
        balance,
        currency,
        status,
        -- a delete is a closing state too: the account's days end there
        is_deleted,
        _loaded_at
    from {{ ref('accounts_history') }}
    {%- if is_incremental() %}
        {%- if from_date is none %}
    where false  -- nothing new was loaded
        {%- else %}
    -- the versions still valid on or after the first day to recompute
    where valid_to is null or valid_to >= {{ from_instant }}
        {%- endif %}
    {%- endif %}
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
        count(*) as postings,
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
        (select {{ utc_date('max(valid_from)') }} from {{ ref('accounts_history') }}) as last_date
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
    -- the newest load this row reflects: the next run's watermark
    case when p._loaded_at > c._loaded_at then p._loaded_at else c._loaded_at end as _loaded_at,
    {{ built_at() }} as _built_at
from closing_until as c
inner join days
    on days.date_day >= c.balance_date
    and (c.next_change_date is null or days.date_day < c.next_change_date)
left join daily_postings as p
    on c.account_id = p.account_id and days.date_day = p.balance_date
where not c.is_deleted
