{# Where DuckDB and Spark SQL differ, the models call one of these macros and dbt dispatches to
   the adapter's version (`duckdb__...`, `spark__...`): the models themselves are the same text on
   both engines (LAKEHOUSE_ENGINE, profiles.yml). Portable SQL and dbt's own cross-database macros
   (dbt.dateadd, dbt.datediff, dbt.type_string) are used first; these cover the rest. #}

{# hhmm clock integers (517 = 05:17, 2400 = midnight ending the day) as minutes after midnight:
   integer division is `//` in DuckDB and `div` in Spark. #}
{% macro hhmm_to_minutes(column) -%}
    {{ return(adapter.dispatch('hhmm_to_minutes', 'lakehouse')(column)) }}
{%- endmacro %}

{% macro default__hhmm_to_minutes(column) -%}
    (({{ column }} // 100) * 60 + ({{ column }} % 100))
{%- endmacro %}

{% macro spark__hhmm_to_minutes(column) -%}
    (({{ column }} div 100) * 60 + ({{ column }} % 100))
{%- endmacro %}

{# A local wall-clock timestamp read in an IANA zone, as the UTC instant (null zone -> null).
   DuckDB returns a TIMESTAMPTZ; Spark a TIMESTAMP in its session zone, which the Spark engine
   pins to UTC (resources/warehouse/spark_engine.py), so both hold the same instant. #}
{% macro local_to_utc(timestamp, zone) -%}
    {{ return(adapter.dispatch('local_to_utc', 'lakehouse')(timestamp, zone)) }}
{%- endmacro %}

{% macro default__local_to_utc(timestamp, zone) -%}
    timezone({{ zone }}, {{ timestamp }})
{%- endmacro %}

{% macro spark__local_to_utc(timestamp, zone) -%}
    to_utc_timestamp({{ timestamp }}, {{ zone }})
{%- endmacro %}

{# One row per day in [start, end) as `date_day` (start and end are 'YYYY-MM-DD' strings). #}
{% macro calendar_days(start, end) -%}
    {{ return(adapter.dispatch('calendar_days', 'lakehouse')(start, end)) }}
{%- endmacro %}

{% macro default__calendar_days(start, end) -%}
    select cast(range as date) as date_day from range(date '{{ start }}', date '{{ end }}', interval 1 day)
{%- endmacro %}

{% macro spark__calendar_days(start, end) -%}
    select explode(sequence(date '{{ start }}', date_sub(date '{{ end }}', 1), interval 1 day)) as date_day
{%- endmacro %}

{# ISO day of week (Monday = 1 ... Sunday = 7) and the English day name. #}
{% macro iso_day_of_week(date) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'lakehouse')(date)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date) -%}
    isodow({{ date }})
{%- endmacro %}

{% macro spark__iso_day_of_week(date) -%}
    (weekday({{ date }}) + 1)
{%- endmacro %}

{% macro day_name(date) -%}
    {{ return(adapter.dispatch('day_name', 'lakehouse')(date)) }}
{%- endmacro %}

{% macro default__day_name(date) -%}
    dayname({{ date }})
{%- endmacro %}

{% macro spark__day_name(date) -%}
    date_format({{ date }}, 'EEEE')
{%- endmacro %}

{# The materialization of the daily models (fct_flights, carrier_daily_performance): each build
   replaces exactly the days of its partition window.
   - DuckDB: append after a pre-hook that deletes the window (delete_partition_window), so a
     re-delivered day that lost rows loses them here too.
   - Spark: parquet tables have no DELETE (that needs Delta, whose jars come from Maven); dbt-spark's
     insert_overwrite strategy with the table partitioned by day replaces the partitions the
     window's rows fall in. A day re-delivered with no rows at all would keep its old rows there;
     the raw zone's volume contract (min_rows in resources/raw/sources.yml) refuses such a
     delivery before dbt runs. #}
{% macro daily_table_config(column) -%}
    {{ return(adapter.dispatch('daily_table_config', 'lakehouse')(column)) }}
{%- endmacro %}

{% macro default__daily_table_config(column) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'append',
        'pre_hook': "{{ delete_partition_window('" ~ column ~ "') }}",
    }) }}
{%- endmacro %}

{% macro spark__daily_table_config(column) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'insert_overwrite',
        'partition_by': [column],
        'file_format': 'parquet',
    }) }}
{%- endmacro %}
