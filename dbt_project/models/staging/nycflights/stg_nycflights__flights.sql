{{ config(tags=['daily']) }}
-- One row per delivered flight: renamed, typed, tail number pseudonymized, and the hhmm clock
-- integers turned into local timestamps (origin's zone for departures, destination's for
-- arrivals). 2400 is midnight ending the day; a scheduled arrival clock earlier than the
-- departure clock lands on the next day. Actual times are scheduled + delay, which stays right
-- when a delay carries a flight past midnight (dep_time alone would not say which day).
-- The same text runs on DuckDB and Spark (macros/dialect.sql).

with source as (
    select * from {{ source('nycflights', 'flights') }}
),

typed as (
    select
        *,
        make_date(cast(year as integer), cast(month as integer), cast(day as integer)) as scheduled_date,
        {{ hhmm_to_minutes('sched_dep_time') }}                                       as sched_dep_minute,
        {{ hhmm_to_minutes('sched_arr_time') }}
            + case when sched_arr_time < sched_dep_time then 1440 else 0 end          as sched_arr_minute
    from source
),

scheduled as (
    select
        *,
        {{ dbt.dateadd('minute', 'sched_dep_minute', 'cast(scheduled_date as timestamp)') }} as scheduled_departure_local,
        {{ dbt.dateadd('minute', 'sched_arr_minute', 'cast(scheduled_date as timestamp)') }} as scheduled_arrival_local
    from typed
)

select
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
    scheduled_departure_local,
    {{ dbt.dateadd('minute', 'dep_delay', 'scheduled_departure_local') }} as actual_departure_local,
    scheduled_arrival_local,
    {{ dbt.dateadd('minute', 'arr_delay', 'scheduled_arrival_local') }}   as actual_arrival_local,
    cast(dep_time as integer)                                             as dep_time,
    cast(arr_time as integer)                                             as arr_time,
    cast(dep_delay as integer)                                            as dep_delay,
    cast(arr_delay as integer)                                            as arr_delay,
    cast(air_time as integer)                                             as air_time,
    cast(distance as integer)                                             as distance,
    delivery_date,
    _batch_id                                                             as batch_id,
    _source_file                                                          as source_file,
    _source_row                                                           as source_row,
    _ingested_at                                                          as ingested_at
from scheduled
