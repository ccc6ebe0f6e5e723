{# Schemas are the zones (staging, intermediate, curated, snapshots): use the configured name
   as is instead of dbt's default "<target>_<custom>" prefixing. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
