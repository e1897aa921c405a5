{#- SCD2 sanity: every key has exactly one current version. Fails with the offending keys. -#}
{% test one_current_version(model, key) %}
select {{ key }} as key_value, sum(case when is_current then 1 else 0 end) as current_versions
from {{ model }}
group by {{ key }}
having sum(case when is_current then 1 else 0 end) <> 1
{% endtest %}

{#- SCD2 windows in log order: no window runs backwards (valid_to before valid_from), each closes
    exactly when the key's next version by lsn opens, and validity never starts earlier than the
    version before it. Fails with the offending versions. -#}
{% test windows_run_forwards(model, key) %}
with ordered as (
    select
        {{ key }} as key_value, lsn, valid_from, valid_to,
        lead(valid_from) over (partition by {{ key }} order by lsn) as next_from
    from {{ model }}
)
select * from ordered
where valid_to < valid_from
   or next_from < valid_from
   or valid_to is distinct from next_from
{% endtest %}
