{{ config(tags=['daily']) }}
-- One row per delivered flight: renamed, typed, tail number pseudonymized, and the hhmm clock
-- integers turned into local timestamps (origin's zone for departures, destination's for
-- arrivals). 2400 is midnight ending the day; a scheduled arrival clock earlier than the
-- departure clock lands on the next day. Actual times are scheduled + delay, which stays right
-- when a delay carries a flight past midnight (dep_time alone would not say which day).

with source as (
    select * from {{ source('nycflights', 'flights') }}
),

typed as (
    select
        *,
        make_date(year::bigint, month::bigint, day::bigint) as scheduled_date
    from source
)

select
    strftime(scheduled_date, '%Y%m%d') || '-' || carrier || '-' || flight::varchar || '-'
        || origin || '-' || lpad(sched_dep_time::varchar, 4, '0')          as flight_id,
    scheduled_date                                                        as flight_date,
    carrier,
    flight::integer                                                       as flight_number,
    pseudonymize(tailnum)                                                 as tailnum_key,
    origin,
    dest,
    sched_dep_time::integer                                               as sched_dep_time,
    sched_arr_time::integer                                               as sched_arr_time,
    scheduled_date::timestamp
        + to_minutes({{ hhmm_to_minutes('sched_dep_time') }}::bigint)     as scheduled_departure_local,
    scheduled_departure_local + to_minutes(dep_delay::bigint)             as actual_departure_local,
    scheduled_date::timestamp
        + to_minutes({{ hhmm_to_minutes('sched_arr_time') }}::bigint)
        + case when sched_arr_time < sched_dep_time then interval 1 day else interval 0 day end
                                                                          as scheduled_arrival_local,
    scheduled_arrival_local + to_minutes(arr_delay::bigint)               as actual_arrival_local,
    dep_time::integer                                                     as dep_time,
    arr_time::integer                                                     as arr_time,
    dep_delay::integer                                                    as dep_delay,
    arr_delay::integer                                                    as arr_delay,
    air_time::integer                                                     as air_time,
    distance::integer                                                     as distance,
    delivery_date,
    _batch_id                                                             as batch_id,
    _source_file                                                          as source_file,
    _source_row                                                           as source_row,
    _ingested_at                                                          as ingested_at
from typed
