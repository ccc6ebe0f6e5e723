select
    faa,
    name as airport_name,
    lat as latitude,
    lon as longitude,
    cast(alt as integer) as altitude_ft,
    tz as utc_offset_hours,
    dst as dst_rule,
    tzone as time_zone,
    _batch_id as batch_id,
    _ingested_at as ingested_at
from {{ source('nycflights', 'airports') }}
