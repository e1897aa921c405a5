{#- SCD2 sanity: every key has exactly one current version, and versions do not overlap (each
    closes when the next opens). Fails with the offending keys. -#}
{% test one_current_version(model, key) %}
with per_key as (
    select
        {{ key }} as key_value,
        sum(case when is_current then 1 else 0 end) as current_versions,
        sum(case when valid_to is not null and valid_to < valid_from then 1 else 0 end) as backwards
    from {{ model }}
    group by {{ key }}
)
select * from per_key
where current_versions <> 1 or backwards > 0
{% endtest %}
