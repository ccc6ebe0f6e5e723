-- Calendar from var calendar_start to calendar_end (exclusive) with US federal holidays and the
-- distance to the nearest one (travel peaks around them).

with days as (
    select cast(range as date) as date_day
    from range(date '{{ var("calendar_start") }}', date '{{ var("calendar_end") }}', interval 1 day)
),

holidays as (
    select holiday_date, holiday_name from {{ ref('us_federal_holidays') }}
)

select
    days.date_day,
    year(days.date_day)                 as year,
    month(days.date_day)                as month,
    day(days.date_day)                  as day_of_month,
    isodow(days.date_day)               as day_of_week,
    dayname(days.date_day)              as day_name,
    isodow(days.date_day) >= 6          as is_weekend,
    holidays.holiday_date is not null   as is_holiday,
    holidays.holiday_name,
    (select min(abs(date_diff('day', days.date_day, h.holiday_date))) from holidays as h)
                                        as days_to_nearest_holiday
from days
left join holidays on days.date_day = holidays.holiday_date
