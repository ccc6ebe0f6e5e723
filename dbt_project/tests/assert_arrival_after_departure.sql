{{ config(meta={'dagster': {'ref': {'name': 'fct_flights'}}}) }}
-- The next-day rule for arrival clocks: a scheduled arrival instant never precedes departure
-- (over the partition window being built, as the model's tests).
select flight_id, scheduled_departure_utc, scheduled_arrival_utc
from {{ ref('fct_flights') }}
where scheduled_arrival_utc < scheduled_departure_utc and {{ in_partition_window('flight_date') }}
