"""Day-ahead scores as soon as they can exist: the day-ahead sensor.

A day D's day-ahead scores need D's timetable (published at noon on D-1) and the flights and
weather of D-1 (delivered at 02:00 on D, after the day-ahead cut-off of 22:00 on D-1 they
describe). The sensor requests ``score_day_ahead`` for D (timetable, day-ahead features, scores)
once both are in, ahead of D's first departure. A cron tick cannot: it targets the day that just
ended, while the timetable is about the day to come.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from assets.ml.keys import SCORES_KEY
from resources.ml.features.availability import CENTRE_ZONE, SCHEDULE_PUBLISHED_LOCAL

FLIGHTS_KEY = dg.AssetKey(["curated", "fct_flights"])
CATCH_UP_DAYS = 3  # days further back are a backfill, not the sensor's business


def published_through(now: datetime) -> date:
    """The last day whose timetable is published at ``now``."""
    local = now.astimezone(ZoneInfo(CENTRE_ZONE))
    return local.date() + timedelta(days=1 if local.time() >= SCHEDULE_PUBLISHED_LOCAL else 0)


def due_days(
    now: datetime, first_day: date, last_day: date, delivered: Callable[[date], bool], scored: Callable[[date], bool]
) -> list[date]:
    """Days (oldest first, at most CATCH_UP_DAYS) whose timetable is published and whose day before
    is delivered (or precedes the first day), and which have no scores yet."""
    newest = min(published_through(now), last_day)
    days = [newest - timedelta(days=i) for i in range(CATCH_UP_DAYS)]
    return sorted(
        d for d in days if d >= first_day and (d == first_day or delivered(d - timedelta(days=1))) and not scored(d)
    )


def is_materialized(instance: dg.DagsterInstance, key: dg.AssetKey, day: date) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    return bool(records)


def build_day_ahead_sensor(daily: dg.DailyPartitionsDefinition, job_name: str) -> dg.SensorDefinition:
    first = daily.start.date()
    last = daily.end.date() - timedelta(days=1) if daily.end else date.max

    @dg.sensor(
        name="day_ahead_scores",
        job_name=job_name,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests a day's timetable, day-ahead features and scores as soon as its "
        "timetable is published (noon the day before) and the day before's flights are delivered.",
    )
    def day_ahead_scores(context: dg.SensorEvaluationContext):
        instance = context.instance
        for day in due_days(
            datetime.now(ZoneInfo("UTC")),
            first,
            last,
            lambda d: is_materialized(instance, FLIGHTS_KEY, d),
            lambda d: is_materialized(instance, SCORES_KEY, d),
        ):
            yield dg.RunRequest(run_key=f"day_ahead:{day}", partition_key=day.isoformat())

    return day_ahead_scores
