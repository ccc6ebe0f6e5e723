{# Daily models rebuild exactly the partition window Dagster passes ([start, end)), read from the
   environment (LAKEHOUSE_WINDOW_START / LAKEHOUSE_WINDOW_END, set by assets/warehouse/dbt.py), not
   from dbt --vars: new vars make dbt re-parse the whole project on every daily build, while a
   changed environment variable re-parses only the files that read it. The window is rendered
   as date literals, so DuckDB prunes the raw zone's hive partitions through the staging views
   (a runtime value such as getvariable() made every one-day build scan the whole year: fct_flights
   0.22 s -> 1.7 s, measured). Without a window a model builds every delivered day. The pre-hook
   deletes the window first, so a re-run replaces the days instead of duplicating them, and a day
   that lost rows in a re-delivery loses them here. #}

{% macro in_partition_window(column) -%}
    {{ column }} >= date '{{ env_var("LAKEHOUSE_WINDOW_START", "0001-01-01") or "0001-01-01" }}'
    and {{ column }} < date '{{ env_var("LAKEHOUSE_WINDOW_END", "9999-12-31") or "9999-12-31" }}'
{%- endmacro %}

{% macro delete_partition_window(column) -%}
    {{ return(adapter.dispatch('delete_partition_window', 'lakehouse')(column)) }}
{%- endmacro %}

{% macro default__delete_partition_window(column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ in_partition_window(column) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# Spark's parquet tables have no DELETE: the window's day partitions are dropped instead (the
   daily models are partitioned by `column` on Spark, macros/dialect.sql), or every row when no
   window is set. Then a day re-delivered with no rows (allowed by may_be_empty or a recorded
   override) is emptied on Spark as on DuckDB, instead of keeping its old rows. #}
{% macro spark__delete_partition_window(column) -%}
    {%- set start = env_var("LAKEHOUSE_WINDOW_START", "") -%}
    {%- set end = env_var("LAKEHOUSE_WINDOW_END", "") -%}
    {%- if not is_incremental() -%}
        select 1
    {%- elif not (start and end) -%}
        truncate table {{ this }}
    {%- else -%}
        {%- set day = modules.datetime.date.fromisoformat(start) -%}
        {%- set last = modules.datetime.date.fromisoformat(end) -%}
        {%- set specs = [] -%}
        {%- for i in range((last - day).days) -%}
            {%- do specs.append("partition (" ~ column ~ " = '" ~ (day + modules.datetime.timedelta(days=i)).isoformat() ~ "')") -%}
        {%- endfor -%}
        alter table {{ this }} drop if exists {{ specs | join(', ') }}
    {%- endif -%}
{%- endmacro %}
