{#- Models land in exactly the schema they name (silver, gold), not "<target schema>_silver":
    the API and `fin sql` read gold.dim_accounts in every environment. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
