-- Current version of each airport (history in snapshots.airports_snapshot).
select
    faa,
    airport_name,
    latitude,
    longitude,
    altitude_ft,
    utc_offset_hours,
    dst_rule,
    time_zone,
    faa in ('EWR', 'JFK', 'LGA') as is_nyc_origin,
    dbt_valid_from as valid_from
from {{ ref('airports_snapshot') }}
where dbt_valid_to is null
