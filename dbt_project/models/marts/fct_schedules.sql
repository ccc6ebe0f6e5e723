{{
    config(
        on_schema_change='append_new_columns',
        tags=['daily'],
        **daily_table_config('flight_date'),
    )
}}
-- The published timetable: one row per scheduled flight, with UTC instants read in each airport's
-- zone like curated.fct_flights. Day-ahead predictions of a day read its timetable from here, so
-- they exist before the day's flights are delivered.

with schedules as (
    select * from {{ ref('stg_nycflights__schedules') }}
),

airports as (
    select
        faa,
        time_zone
    from {{ ref('stg_nycflights__airports') }}
)

select
    schedules.flight_id,
    schedules.flight_date,
    schedules.carrier,
    schedules.flight_number,
    schedules.tailnum_key,
    schedules.origin,
    schedules.dest,
    schedules.scheduled_departure_local,
    {{ local_to_utc('schedules.scheduled_departure_local', 'origin_airport.time_zone') }} as scheduled_departure_utc,
    schedules.scheduled_arrival_local,
    {{ local_to_utc('schedules.scheduled_arrival_local', 'dest_airport.time_zone') }} as scheduled_arrival_utc,
    schedules.distance,
    schedules.batch_id,
    schedules.source_file,
    schedules.source_row,
    schedules.ingested_at
from schedules
left join airports as origin_airport on schedules.origin = origin_airport.faa
left join airports as dest_airport on schedules.dest = dest_airport.faa
where {{ in_partition_window('schedules.delivery_date') }}
