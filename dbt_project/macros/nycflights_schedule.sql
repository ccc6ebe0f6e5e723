{# The timetable part of a nycflights row, shared by the flights (delivered after the day) and the
   schedules (published the day before) so both give a flight the same key and the same scheduled
   times. `schedule_ctes(relation)` defines `typed` and `scheduled` over a CTE holding the raw
   columns; `schedule_columns()` selects the timetable from `scheduled`. #}

{% macro schedule_ctes(relation) -%}
typed as (
    select
        *,
        make_date(cast(year as integer), cast(month as integer), cast(day as integer)) as scheduled_date,
        {{ hhmm_to_minutes('sched_dep_time') }}                                       as sched_dep_minute,
        {{ hhmm_to_minutes('sched_arr_time') }}
            + case when sched_arr_time < sched_dep_time then 1440 else 0 end          as sched_arr_minute
    from {{ relation }}
),

scheduled as (
    select
        *,
        {{ dbt.dateadd('minute', 'sched_dep_minute', 'cast(scheduled_date as timestamp)') }} as scheduled_departure_local,
        {{ dbt.dateadd('minute', 'sched_arr_minute', 'cast(scheduled_date as timestamp)') }} as scheduled_arrival_local
    from typed
)
{%- endmacro %}

{% macro schedule_columns() -%}
    cast(cast(year as integer) * 10000 + cast(month as integer) * 100 + cast(day as integer) as {{ dbt.type_string() }})
        || '-' || carrier || '-' || cast(flight as {{ dbt.type_string() }}) || '-'
        || origin || '-' || lpad(cast(sched_dep_time as {{ dbt.type_string() }}), 4, '0') as flight_id,
    scheduled_date                                                        as flight_date,
    carrier,
    cast(flight as integer)                                               as flight_number,
    pseudonymize(tailnum)                                                 as tailnum_key,
    origin,
    dest,
    cast(sched_dep_time as integer)                                       as sched_dep_time,
    cast(sched_arr_time as integer)                                       as sched_arr_time,
    scheduled_departure_local
{%- endmacro %}
