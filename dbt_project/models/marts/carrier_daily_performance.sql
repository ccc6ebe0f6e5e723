{{
    config(
        tags=['daily'],
        **daily_table_config('flight_date'),
    )
}}
-- Daily on-time performance by carrier and origin. On time = arrived less than 15 minutes late
-- (the US DOT definition); cancelled and diverted flights are counted, not rated.

select
    flight_date,
    carrier,
    origin,
    count(*) as flights_scheduled,
    count(*) filter (where cancelled) as flights_cancelled,
    count(*) filter (where diverted) as flights_diverted,
    count(arr_delay) as flights_arrived,
    count(*) filter (where not arrived_late) as flights_on_time,
    round(count(*) filter (where not arrived_late) / nullif(count(arr_delay), 0), 4) as on_time_rate,
    round(avg(dep_delay), 2) as avg_dep_delay_min,
    round(avg(arr_delay), 2) as avg_arr_delay_min
from {{ ref('fct_flights') }}
where {{ in_partition_window('flight_date') }}
group by flight_date, carrier, origin
