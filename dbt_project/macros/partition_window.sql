{# Daily models rebuild exactly the partition window Dagster passes as vars window_start and
   window_end ([start, end)). The pre-hook deletes the window first, so a re-run replaces the
   days instead of duplicating them, and a day that lost rows in a re-delivery loses them here. #}

{% macro in_partition_window(column) -%}
    {%- if var('window_start') and var('window_end') -%}
        {{ column }} >= date '{{ var("window_start") }}' and {{ column }} < date '{{ var("window_end") }}'
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{% macro delete_partition_window(column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ in_partition_window(column) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# hhmm clock integers (517 = 05:17, 2400 = midnight ending the day) as minutes after midnight. #}
{% macro hhmm_to_minutes(column) -%}
    (({{ column }} // 100) * 60 + ({{ column }} % 100))
{%- endmacro %}
