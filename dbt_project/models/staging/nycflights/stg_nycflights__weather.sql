{{ config(tags=['daily']) }}
-- One row per origin and local clock hour. The delivery has two rows for 01:00 on the night
-- clocks fall back (2013-11-03, 3 origins): we keep the first (daylight-time) reading, so a
-- join from flights on the scheduled local hour never duplicates a flight.

with source as (
    select * from {{ source('nycflights', 'weather') }}
)

select
    origin,
    make_timestamp(year::bigint, month::bigint, day::bigint, hour::bigint, 0, 0) as observed_hour_local,
    time_hour                   as observed_at_utc,
    temp                        as temp_f,
    dewp                        as dewpoint_f,
    humid                       as humidity_pct,
    wind_dir                    as wind_dir_deg,
    wind_speed                  as wind_speed_mph,
    wind_gust                   as wind_gust_mph,
    precip                      as precip_in,
    pressure                    as pressure_mb,
    visib                       as visibility_mi,
    delivery_date,
    _batch_id                   as batch_id,
    _ingested_at                as ingested_at
from source
qualify row_number() over (partition by origin, observed_hour_local order by time_hour) = 1
