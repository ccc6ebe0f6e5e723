-- Calendar from var calendar_start to calendar_end (exclusive) with US federal holidays and the
-- distance to the nearest one (travel peaks around them).

with days as (
    {{ calendar_days(var("calendar_start"), var("calendar_end")) }}
),

holidays as (
    select
        holiday_date,
        holiday_name
    from {{ ref('us_federal_holidays') }}
),

-- A cross join of 730 days by 20 holidays (14,600 rows), not a correlated subquery: Spark does
-- not run an aggregate over outer and inner columns in a correlated subquery.
nearest_holiday as (
    select
        days.date_day,
        min(abs({{ dbt.datediff('days.date_day', 'holidays.holiday_date', 'day') }})) as days_to_nearest_holiday
    from days
    cross join holidays
    group by days.date_day
)

select
    days.date_day,
    year(days.date_day) as year,
    month(days.date_day) as month,
    day(days.date_day) as day_of_month,
    {{ iso_day_of_week('days.date_day') }} as day_of_week,
    {{ day_name('days.date_day') }} as day_name,
    {{ iso_day_of_week('days.date_day') }} >= 6 as is_weekend,
    holidays.holiday_date is not null as is_holiday,
    holidays.holiday_name,
    nearest_holiday.days_to_nearest_holiday
from days
left join holidays on days.date_day = holidays.holiday_date
left join nearest_holiday on days.date_day = nearest_holiday.date_day
