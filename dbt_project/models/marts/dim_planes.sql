-- Current version of each aircraft (history in snapshots.planes_snapshot), keyed by the
-- pseudonymized tail number so it joins fct_flights.tailnum_key.
select
    tailnum_key,
    year_built,
    aircraft_type,
    manufacturer,
    model,
    engines,
    seats,
    cruise_speed_mph,
    engine_type,
    dbt_valid_from as valid_from
from {{ ref('planes_snapshot') }}
where dbt_valid_to is null
