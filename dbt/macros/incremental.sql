{#- The filter an incremental model puts on its input: rows loaded at or after the newest
    _loaded_at it already holds (minus var('lookback_minutes')). Re-reading a row is harmless
    because every incremental model is keyed; skipping one would lose it. -#}
{% macro loaded_since_last_run(loaded_at_column='_loaded_at') -%}
    {%- if is_incremental() -%}
    {{ loaded_at_column }} >= (
        select coalesce(max(_loaded_at), cast('1970-01-01 00:00:00+00' as {{ instant_type() }}))
               - interval '{{ var("lookback_minutes") | int }} minutes'
        from {{ this }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}
