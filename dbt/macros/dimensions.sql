{#- The columns every SCD2 dimension ends with: a history's validity under the names BI tools
    know from dbt snapshots, then where the version sits in the log. -#}
{% macro dimension_validity_columns() -%}
    version,
    is_deleted,
    valid_from as effective_from,
    valid_to as effective_to,
    is_current,
    lsn,
    tx_id,
    _built_at
{%- endmacro %}
