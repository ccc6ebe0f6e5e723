{{
    config(
        on_schema_change='append_new_columns',
        tags=['daily'],
        **daily_table_config('flight_date'),
    )
}}
-- Exactly one row per delivered flight (cancelled and diverted included and flagged). Built
-- per partition window: the pre-hook deletes the window's days, this select re-inserts them.

select
    flight_id,
    flight_date,
    carrier,
    flight_number,
    tailnum_key,
    origin,
    dest,
    scheduled_departure_local,
    scheduled_departure_utc,
    actual_departure_local,
    actual_departure_utc,
    scheduled_arrival_local,
    scheduled_arrival_utc,
    actual_arrival_local,
    actual_arrival_utc,
    dep_delay,
    arr_delay,
    air_time,
    distance,
    dep_delay is null as cancelled,
    dep_delay is not null and arr_delay is null as diverted,
    case when arr_delay is not null then arr_delay >= 15 end as arrived_late,
    batch_id,
    source_file,
    source_row,
    ingested_at
from {{ ref('int_flights__timestamped') }}
where {{ in_partition_window('delivery_date') }}
