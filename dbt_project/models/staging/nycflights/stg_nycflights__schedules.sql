{{ config(tags=['daily']) }}
-- One row per scheduled flight of the published timetable (delivered the day before the flights
-- fly): the flights' own key and scheduled times (macros/nycflights_schedule.sql), tail number
-- pseudonymized, nothing recorded at or after departure.

with source as (
    select * from {{ source('nycflights', 'schedules') }}
),

{{ schedule_ctes('source') }}

select
    {{ schedule_columns() }},
    scheduled_arrival_local,
    cast(distance as integer) as distance,
    delivery_date,
    _batch_id as batch_id,
    _source_file as source_file,
    _source_row as source_row,
    _ingested_at as ingested_at
from scheduled
