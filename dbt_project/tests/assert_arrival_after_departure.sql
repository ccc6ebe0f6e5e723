{{ config(meta={'dagster': {'ref': {'name': 'fct_flights'}}}) }}
-- The next-day rule for arrival clocks: a scheduled arrival instant never precedes departure.
select flight_id, scheduled_departure_utc, scheduled_arrival_utc
from {{ ref('fct_flights') }}
where scheduled_arrival_utc < scheduled_departure_utc
