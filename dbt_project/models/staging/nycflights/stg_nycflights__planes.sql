-- Aircraft registry; the tail number is replaced by its keyed pseudonym (same as in flights).
select
    pseudonymize(tailnum) as tailnum_key,
    cast(year as integer) as year_built,
    type as aircraft_type,
    manufacturer,
    model,
    cast(engines as integer) as engines,
    cast(seats as integer) as seats,
    speed as cruise_speed_mph,
    engine as engine_type,
    _batch_id as batch_id,
    _ingested_at as ingested_at
from {{ source('nycflights', 'planes') }}
