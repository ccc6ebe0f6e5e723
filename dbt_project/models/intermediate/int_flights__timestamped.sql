{{ config(tags=['daily']) }}
-- Flights with UTC instants: each local timestamp is read in its airport's IANA zone (origin
-- for departures, destination for arrivals). The 4 destinations missing from the airports
-- delivery (BQN, PSE, SJU, STT) have no zone, so their arrival instants stay null; the local
-- times remain.

with flights as (
    select * from {{ ref('stg_nycflights__flights') }}
),

airports as (
    select
        faa,
        time_zone
    from {{ ref('stg_nycflights__airports') }}
)

select
    flights.*,
    {{ local_to_utc('flights.scheduled_departure_local', 'origin_airport.time_zone') }} as scheduled_departure_utc,
    {{ local_to_utc('flights.actual_departure_local', 'origin_airport.time_zone') }} as actual_departure_utc,
    {{ local_to_utc('flights.scheduled_arrival_local', 'dest_airport.time_zone') }} as scheduled_arrival_utc,
    {{ local_to_utc('flights.actual_arrival_local', 'dest_airport.time_zone') }} as actual_arrival_utc
from flights
left join airports as origin_airport on flights.origin = origin_airport.faa
left join airports as dest_airport on flights.dest = dest_airport.faa
