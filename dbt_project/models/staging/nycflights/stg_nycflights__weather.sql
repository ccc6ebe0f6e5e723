{{ config(tags=['daily']) }}
-- One row per origin and local clock hour. The delivery has two rows for 01:00 on the night
-- clocks fall back (2013-11-03, 3 origins): we keep the first (daylight-time) reading, so a
-- join from flights on the scheduled local hour never duplicates a flight.

with source as (
    select * from {{ source('nycflights', 'weather') }}
),

renamed as (
    select
        origin,
        make_timestamp(
            cast(year as integer), cast(month as integer), cast(day as integer),
            cast(hour as integer), 0, 0
        ) as observed_hour_local,
        time_hour as observed_at_utc,
        temp as temp_f,
        dewp as dewpoint_f,
        humid as humidity_pct,
        wind_dir as wind_dir_deg,
        wind_speed as wind_speed_mph,
        wind_gust as wind_gust_mph,
        precip as precip_in,
        pressure as pressure_mb,
        visib as visibility_mi,
        delivery_date,
        _batch_id as batch_id,
        _ingested_at as ingested_at
    from source
),

ranked as (
    select
        *,
        row_number() over (partition by origin, observed_hour_local order by observed_at_utc) as reading
    from renamed
)

-- (A filtered CTE, not QUALIFY: Spark SQL has no QUALIFY.)
select
    origin,
    observed_hour_local,
    observed_at_utc,
    temp_f,
    dewpoint_f,
    humidity_pct,
    wind_dir_deg,
    wind_speed_mph,
    wind_gust_mph,
    precip_in,
    pressure_mb,
    visibility_mi,
    delivery_date,
    batch_id,
    ingested_at
from ranked
where reading = 1
