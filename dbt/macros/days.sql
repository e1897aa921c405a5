{#- UTC calendar days as constants (a model computes them with modules.datetime and writes them
    into its SQL, so the warehouse can skip blocks by them). -#}

{#- Midnight UTC starting day d, as an instant: "the UTC date of t >= d" is "t >= this", which
    compares the column as stored (its blocks can be skipped) and does not depend on the session
    time zone, which is not UTC on Snowflake. -#}
{% macro utc_midnight(d) -%}
    cast('{{ d }}T00:00:00Z' as {{ instant_type() }})
{%- endmacro %}

{% macro date_literal(d) -%}
    cast('{{ d }}' as date)
{%- endmacro %}
