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
   pins to UTC (resources/warehouse/spark_engine.py), so both hold the same instant.
   In the hour that happens twice when clocks fall back (01:30 on 2013-11-03 in New York), DuckDB
   (ICU) takes standard time (06:30 UTC) and Spark (java.time) daylight time (05:30 UTC): Spark's
   answer is moved one hour later when that later instant shows the same wall clock, so both
   engines agree (the unit test int_flights__local_times_become_utc_... checks it on both). US
   zones shift by one hour; a zone with another shift would need its own offset here. #}
{% macro local_to_utc(timestamp, zone) -%}
    {{ return(adapter.dispatch('local_to_utc', 'lakehouse')(timestamp, zone)) }}
{%- endmacro %}

{% macro default__local_to_utc(timestamp, zone) -%}
    {#- timezone() row by row, the zone a constant for the usual ones: with a zone column DuckDB's
        ICU conversion costs ~2 us a row, with a constant ~0.25 us (6 conversions a flight: 200 M
        at SF=100). Any other zone takes the general branch, so results are identical. -#}
    case {{ zone }}
    {%- for known in ['America/New_York', 'America/Chicago', 'America/Los_Angeles', 'America/Denver',
                      'America/Phoenix', 'America/Anchorage', 'Pacific/Honolulu'] %}
        when '{{ known }}' then timezone('{{ known }}', {{ timestamp }})
    {%- endfor %}
        else timezone({{ zone }}, {{ timestamp }})
    end
{%- endmacro %}

{% macro spark__local_to_utc(timestamp, zone) -%}
    case
        when from_utc_timestamp(to_utc_timestamp({{ timestamp }}, {{ zone }}) + interval 1 hour, {{ zone }}) = {{ timestamp }}
            then to_utc_timestamp({{ timestamp }}, {{ zone }}) + interval 1 hour
        else to_utc_timestamp({{ timestamp }}, {{ zone }})
    end
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
   replaces exactly the days of its partition window. A pre-hook first deletes the window
   (delete_partition_window: DELETE on DuckDB, dropped day partitions on Spark), then:
   - DuckDB appends the window's rows;
   - Spark's parquet tables (no DELETE or MERGE without Delta, whose jars come from Maven) are
     partitioned by day and written with dbt-spark's insert_overwrite strategy. #}
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
        'pre_hook': "{{ delete_partition_window('" ~ column ~ "') }}",
    }) }}
{%- endmacro %}
