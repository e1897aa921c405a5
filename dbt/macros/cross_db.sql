{#- The few places where DuckDB and Snowflake SQL differ. Each macro dispatches on the adapter, so
    models are written once; add a <adapter>__ variant here to support another warehouse. -#}

{#- Text of a top-level field of a JSON row image (Debezium `after`/`before`); NULL when absent. -#}
{% macro json_text(column, field) -%}
    {{ return(adapter.dispatch('json_text')(column, field)) }}
{%- endmacro %}
{% macro default__json_text(column, field) -%}
    json_extract_string({{ column }}, '$.{{ field }}')
{%- endmacro %}
{% macro snowflake__json_text(column, field) -%}
    {{ column }}:"{{ field }}"::varchar
{%- endmacro %}

{#- The row image of a change event: `before` for a delete, `after` otherwise. -#}
{% macro row_image(op_column='op') -%}
    case when {{ op_column }} = 'd' then {{ quoted('before') }} else {{ quoted('after') }} end
{%- endmacro %}

{#- A RAW column whose name is an SQL keyword (offset, before, after). Snowflake stores unquoted
    names in upper case, so the quoted form must be upper case there. -#}
{% macro quoted(name) -%}
    {{ return(adapter.dispatch('quoted')(name)) }}
{%- endmacro %}
{% macro default__quoted(name) -%}"{{ name | lower }}"{%- endmacro %}
{% macro snowflake__quoted(name) -%}"{{ name | upper }}"{%- endmacro %}

{#- Exact money: a decimal string with at most 2 fraction digits becomes DECIMAL(18,2); anything
    else becomes NULL (never a rounded value), which the not_null tests then name. A plain cast
    would silently round '12.345' to 12.35. -#}
{% macro money_type() -%}decimal(18,2){%- endmacro %}
{% macro to_money(text) -%}
    {{ return(adapter.dispatch('to_money')(text)) }}
{%- endmacro %}
{% macro default__to_money(text) -%}
    case when regexp_full_match({{ text }}, '-?[0-9]{1,16}([.][0-9]{1,2})?')
         then cast({{ text }} as {{ money_type() }}) end
{%- endmacro %}
{% macro snowflake__to_money(text) -%}
    case when regexp_like({{ text }}, '-?[0-9]{1,16}([.][0-9]{1,2})?')
         then cast({{ text }} as number(18,2)) end
{%- endmacro %}

{#- An ISO-8601 timestamp string ("2026-11-25T15:04:42.633222Z") as an instant. -#}
{% macro to_instant(text) -%}
    {{ return(adapter.dispatch('to_instant')(text)) }}
{%- endmacro %}
{% macro default__to_instant(text) -%}cast({{ text }} as timestamptz){%- endmacro %}
{% macro snowflake__to_instant(text) -%}cast({{ text }} as timestamp_tz){%- endmacro %}

{#- Microseconds since the epoch (commit_ts_us) as an instant, without a detour through floats. -#}
{% macro instant_from_us(us) -%}
    {{ return(adapter.dispatch('instant_from_us')(us)) }}
{%- endmacro %}
{% macro default__instant_from_us(us) -%}timezone('UTC', make_timestamp({{ us }})){%- endmacro %}
{% macro snowflake__instant_from_us(us) -%}to_timestamp_tz({{ us }}, 6){%- endmacro %}

{#- An instant as microseconds since the epoch (BIGINT), the inverse of instant_from_us. -#}
{% macro us_from_instant(instant) -%}
    {{ return(adapter.dispatch('us_from_instant')(instant)) }}
{%- endmacro %}
{% macro default__us_from_instant(instant) -%}epoch_us({{ instant }}){%- endmacro %}
{% macro snowflake__us_from_instant(instant) -%}date_part(epoch_microsecond, {{ instant }}){%- endmacro %}

{% macro instant_type() -%}
    {{ return(adapter.dispatch('instant_type')()) }}
{%- endmacro %}
{% macro default__instant_type() -%}timestamptz{%- endmacro %}
{% macro snowflake__instant_type() -%}timestamp_tz{%- endmacro %}

{#- How keyed incremental models apply a batch: Snowflake MERGEs; DuckDB deletes the batch's keys
    and inserts the batch in one transaction, which is its fastest correct upsert. -#}
{% macro upsert_strategy() -%}
    {{ return(adapter.dispatch('upsert_strategy')()) }}
{%- endmacro %}
{% macro default__upsert_strategy() -%}{{ return('delete+insert') }}{%- endmacro %}
{% macro snowflake__upsert_strategy() -%}{{ return('merge') }}{%- endmacro %}

{#- var fakesnow (the fakesnow test only) adapts two things fakesnow (DuckDB underneath) cannot run
    and leaves every statement otherwise as on Snowflake; production never sets it:
    - where dbt-snowflake stages a batch: unset, its default, a schema-qualified temporary view
      (MERGE) or table (the custom strategies), which fakesnow refuses; with fakesnow a transient
      table (dbt-snowflake's own option);
    - begin/commit around a delete+insert or MERGE: fakesnow writes its own bookkeeping database
      in each statement, and a DuckDB transaction may write only one database. -#}
{% macro batch_relation_type() -%}
    {{ return('transient' if var('fakesnow', false) else none) }}
{%- endmacro %}

{% macro explicit_transaction(dml) -%}
    {{ return(dml if var('fakesnow', false) else snowflake_dml_explicit_transaction(dml)) }}
{%- endmacro %}

{#- The UTC calendar date of an instant (Snowflake sessions default to Los Angeles time). -#}
{% macro utc_date(instant) -%}
    {{ return(adapter.dispatch('utc_date')(instant)) }}
{%- endmacro %}
{% macro default__utc_date(instant) -%}cast(timezone('UTC', {{ instant }}) as date){%- endmacro %}
{% macro snowflake__utc_date(instant) -%}to_date(convert_timezone('UTC', {{ instant }})){%- endmacro %}

{#- A relation with one row per day, column date_day, from first_date through last_date, which are
    columns of the one-row relation span. -#}
{% macro days_between(span, first_date, last_date) -%}
    {{ return(adapter.dispatch('days_between')(span, first_date, last_date)) }}
{%- endmacro %}
{% macro default__days_between(span, first_date, last_date) -%}
    (select cast(unnest(generate_series(cast({{ first_date }} as timestamp), cast({{ last_date }} as timestamp), interval 1 day)) as date) as date_day
     from {{ span }})
{%- endmacro %}
{% macro snowflake__days_between(span, first_date, last_date) -%}
    (select cast(dateadd(day, d.value::int, {{ first_date }}) as date) as date_day
     from {{ span }}, lateral flatten(input => array_generate_range(0, datediff(day, {{ first_date }}, {{ last_date }}) + 1)) as d)
{%- endmacro %}

{#- The keyword that makes a CTE computed once, on its own, before the query that reads it: on
    DuckDB a CTE read once is otherwise inlined, and a join with it then pushes filters into the
    CTE's scan (see scd2_history's current_rows). Snowflake plans CTEs itself: nothing. -#}
{% macro materialized_cte() -%}
    {{ return(adapter.dispatch('materialized_cte')()) }}
{%- endmacro %}
{% macro default__materialized_cte() -%}{{ return('') }}{%- endmacro %}
{% macro duckdb__materialized_cte() -%}{{ return('materialized') }}{%- endmacro %}
