{{ config(tags=['daily']) }}
-- One row per delivered flight: renamed, typed, tail number pseudonymized, and the hhmm clock
-- integers turned into local timestamps (origin's zone for departures, destination's for
-- arrivals). 2400 is midnight ending the day; a scheduled arrival clock earlier than the
-- departure clock lands on the next day. Actual times are scheduled + delay, which stays right
-- when a delay carries a flight past midnight (dep_time alone would not say which day).
-- The same text runs on DuckDB and Spark (macros/dialect.sql); the timetable columns are the
-- schedules' own (macros/nycflights_schedule.sql).

with source as (
    select * from {{ source('nycflights', 'flights') }}
),

{{ schedule_ctes('source') }}

select
    {{ schedule_columns() }},
    {{ dbt.dateadd('minute', 'dep_delay', 'scheduled_departure_local') }} as actual_departure_local,
    scheduled_arrival_local,
    {{ dbt.dateadd('minute', 'arr_delay', 'scheduled_arrival_local') }} as actual_arrival_local,
    cast(dep_time as integer) as dep_time,
    cast(arr_time as integer) as arr_time,
    cast(dep_delay as integer) as dep_delay,
    cast(arr_delay as integer) as arr_delay,
    cast(air_time as integer) as air_time,
    cast(distance as integer) as distance,
    delivery_date,
    _batch_id as batch_id,
    _source_file as source_file,
    _source_row as source_row,
    _ingested_at as ingested_at
from scheduled
