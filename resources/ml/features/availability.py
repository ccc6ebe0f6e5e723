"""Prediction time: when a prediction is made (its horizon) and when each source row is known.

A model serves a **horizon**: the time it predicts at, per flight (``as_of``, UTC).

- ``day_ahead``: at ``CUTOFF_LOCAL`` on the evening before the flight's day, in the operations
  centre's zone (the three origins are in New York). Every flight of day D shares one ``as_of``.
- ``nowcast_2h``: two hours before the flight's scheduled departure.

Every source row has an **availability time** (UTC), the moment it is known operationally:

- schedule of day D (carrier, flight, tail assignment, route, scheduled times, distance): published
  at ``SCHEDULE_PUBLISHED_LOCAL`` on D-1, before the day-ahead cut-off;
- a flight's departure (actual departure time, departure delay, or its cancellation): at the
  actual departure, or the scheduled departure for a cancellation, plus ``OPERATIONS_LAG``;
- a flight's outcome (arrival, diversion, the label): at the actual arrival (a cancellation: the
  scheduled departure; a diversion or an arrival without a time zone: ``UNKNOWN_ARRIVAL_BOUND``
  after departure) plus ``OPERATIONS_LAG``;
- a weather observation: at its observation time plus ``WEATHER_LAG``;
- an aircraft registry version: from the date it is valid.

The stamps are computed once from the delivered rows (``annotate``), before any feature code
reads them: the time guard (``garble_after``) rewrites the *content* of every row not yet known at
a prediction time and moves its stamp further into the future, and features must not move.
The daily files replay these events in batches (a day's flights and weather land at 02:00 the day
after); the stamps say when each row would be known from an operational feed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone

import polars as pl

CENTRE_ZONE = "America/New_York"
CUTOFF_LOCAL = time(22, 0)
SCHEDULE_PUBLISHED_LOCAL = time(12, 0)
OPERATIONS_LAG = timedelta(minutes=15)
WEATHER_LAG = timedelta(hours=1)
UNKNOWN_ARRIVAL_BOUND = timedelta(hours=12)  # longer than any flight out of New York
NOWCAST_LEAD = timedelta(hours=2)

DAY_AHEAD, NOWCAST = "day_ahead", "nowcast_2h"
HORIZONS = (DAY_AHEAD, NOWCAST)

# The availability rules a feature may declare (Feature.known), each with what it means. A feature
# whose rule is not here is refused by the audit.
RULES = {
    "schedule": "the day's published schedule (known at 12:00 the day before)",
    "calendar": "the calendar",
    "registry": "the aircraft registry version valid on the day",
    "weather": "weather observations known by the prediction time (observation + 1 h)",
    "history": "outcomes of flights known by the prediction time (arrival + 15 min)",
    "operations": "departures and cancellations of the day known by the prediction time (+ 15 min)",
}

UTC = pl.Datetime("us", "UTC")
NEVER = datetime(9999, 1, 1, tzinfo=timezone.utc)


def _local_on(day: pl.Expr, at: time, days_before: int) -> pl.Expr:
    """``at`` o'clock in CENTRE_ZONE on ``day - days_before``, as UTC. 22:00 and 12:00 are never in
    a daylight-saving gap or overlap (the clocks change at 02:00)."""
    local = (day.cast(pl.Date) - pl.duration(days=days_before)).cast(pl.Datetime("us")) + pl.duration(
        hours=at.hour, minutes=at.minute
    )
    return local.dt.replace_time_zone(CENTRE_ZONE).dt.convert_time_zone("UTC")


def cutoff_utc(day: pl.Expr) -> pl.Expr:
    """The day-ahead prediction time of flights on ``day``."""
    return _local_on(day, CUTOFF_LOCAL, 1)


def cutoff_of(day: date) -> datetime:
    return pl.select(cutoff_utc(pl.lit(day))).item()


def as_of(horizon: str) -> pl.Expr:
    """The prediction time of each flight (a row of curated.fct_flights) for ``horizon``."""
    if horizon == DAY_AHEAD:
        return cutoff_utc(pl.col("flight_date"))
    if horizon == NOWCAST:
        return pl.col("scheduled_departure_utc").dt.convert_time_zone("UTC") - pl.duration(
            seconds=int(NOWCAST_LEAD.total_seconds())
        )
    raise ValueError(f"unknown horizon {horizon!r}: one of {', '.join(HORIZONS)}")


def _utc(column: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone("UTC")


def _lag(td: timedelta) -> pl.Expr:
    return pl.duration(seconds=int(td.total_seconds()))


def departure_known_at() -> pl.Expr:
    """When the flight's departure, or its cancellation, is known."""
    return pl.coalesce(_utc("actual_departure_utc"), _utc("scheduled_departure_utc")) + _lag(OPERATIONS_LAG)


def outcome_known_at() -> pl.Expr:
    """When the flight's outcome (and so its label) is known."""
    departed = pl.col("dep_delay").is_not_null()
    arrival = (
        pl.when(departed)
        .then(pl.coalesce(_utc("actual_arrival_utc"), _utc("actual_departure_utc") + _lag(UNKNOWN_ARRIVAL_BOUND)))
        .otherwise(_utc("scheduled_departure_utc"))
    )
    # A flight delivered with no departure instant at all (no origin zone) is known at the end of
    # the bound after its scheduled local departure read as UTC: late, never early.
    fallback = pl.col("scheduled_departure_local").cast(pl.Datetime("us")).dt.replace_time_zone("UTC") + _lag(
        UNKNOWN_ARRIVAL_BOUND + timedelta(hours=12)
    )
    return pl.coalesce(arrival, fallback) + _lag(OPERATIONS_LAG)


def weather_known_at() -> pl.Expr:
    return _utc("observed_at_utc") + _lag(WEATHER_LAG)


# Columns of a flight row that are its departure or its outcome (everything else is schedule).
DEPARTURE_COLUMNS = ("dep_time", "dep_delay", "actual_departure_local", "actual_departure_utc", "cancelled")
OUTCOME_COLUMNS = (
    "arr_time",
    "arr_delay",
    "air_time",
    "actual_arrival_local",
    "actual_arrival_utc",
    "diverted",
    "arrived_late",
)
WEATHER_COLUMNS = (
    "temp_f",
    "dewpoint_f",
    "humidity_pct",
    "wind_dir_deg",
    "wind_speed_mph",
    "wind_gust_mph",
    "precip_in",
    "pressure_mb",
    "visibility_mi",
)
STAMPS = ("departure_known_at", "outcome_known_at")


def _in_utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Zone-aware columns in "UTC" (the warehouse hands out "Etc/UTC", which polars will not mix)."""
    return frame.with_columns(
        [
            pl.col(c).dt.convert_time_zone("UTC")
            for c, t in frame.schema.items()
            if isinstance(t, pl.Datetime) and t.time_zone not in (None, "UTC")
        ]
    )


def annotate_flights(flights: pl.DataFrame) -> pl.DataFrame:
    flights = _in_utc(flights)
    if all(s in flights.columns for s in STAMPS):
        return flights
    # A timetable row whose flight is not delivered yet has no actuals to know.
    undelivered = pl.col("actuals_delivered").not_() if "actuals_delivered" in flights.columns else pl.lit(False)
    return flights.with_columns(
        pl.when(undelivered).then(pl.lit(NEVER)).otherwise(departure_known_at()).alias("departure_known_at"),
        pl.when(undelivered).then(pl.lit(NEVER)).otherwise(outcome_known_at()).alias("outcome_known_at"),
    )


def annotate_weather(weather: pl.DataFrame) -> pl.DataFrame:
    weather = _in_utc(weather)
    if "known_at" in weather.columns:
        return weather
    return weather.with_columns(weather_known_at().alias("known_at"))


@dataclass(frozen=True)
class Garbling:
    """What ``garble_after`` rewrote: rows whose content was not known at the prediction time."""

    departures: int
    outcomes: int
    weather: int


def _garbage(frame: pl.DataFrame, columns: tuple[str, ...], unknown: pl.Expr) -> list[pl.Expr]:
    out = []
    for c in columns:
        if c not in frame.columns:
            continue
        dtype = frame.schema[c]
        if dtype == pl.Boolean:
            bad = ~pl.col(c).fill_null(False)
        elif dtype.is_temporal():
            bad = pl.col(c) + pl.duration(minutes=-997)
        elif dtype.is_numeric():
            bad = (pl.col(c).fill_null(0) * -7 + 997).cast(dtype)
        else:
            bad = pl.lit("garbage")
        out.append(pl.when(unknown).then(bad).otherwise(pl.col(c)).alias(c))
    return out


def garble_after(inputs, at: datetime):
    """``inputs`` (FeatureInputs, annotated) with every row not known at ``at`` rewritten: content
    replaced by garbage, its availability stamp pushed later still (a feature that reads the
    stamp's value, not only whether it has passed, moves too), later weather readings also
    duplicated with garbage. What was known at ``at`` is untouched."""
    flights, weather = annotate_flights(inputs.flights), annotate_weather(inputs.weather)
    at_lit = pl.lit(at).cast(UTC)
    dep_unknown = pl.col("departure_known_at") > at_lit
    out_unknown = pl.col("outcome_known_at") > at_lit
    garbled = flights.with_columns(
        *_garbage(flights, DEPARTURE_COLUMNS, dep_unknown), *_garbage(flights, OUTCOME_COLUMNS, out_unknown)
    ).with_columns(
        pl.when(dep_unknown)
        .then(pl.col("departure_known_at") + pl.duration(hours=3))
        .otherwise(pl.col("departure_known_at"))
        .alias("departure_known_at"),
        pl.when(out_unknown)
        .then(pl.col("outcome_known_at") + pl.duration(hours=3))
        .otherwise(pl.col("outcome_known_at"))
        .alias("outcome_known_at"),
    )
    w_unknown = pl.col("known_at") > at_lit
    later = weather.filter(w_unknown)
    weather_garbled = pl.concat(
        [
            weather.with_columns(*_garbage(weather, WEATHER_COLUMNS, w_unknown)),
            later.with_columns(
                *_garbage(later, WEATHER_COLUMNS, pl.lit(True)),
                pl.col("observed_at_utc") + pl.duration(minutes=7),
                pl.col("known_at") + pl.duration(minutes=7),
            ),
        ],
        how="vertical_relaxed",
    )
    counts = Garbling(
        departures=flights.filter(dep_unknown).height, outcomes=flights.filter(out_unknown).height, weather=later.height
    )
    return replace(inputs, flights=garbled, weather=weather_garbled), counts


def day_start_utc(day: pl.Expr) -> pl.Expr:
    """Local midnight starting ``day`` in CENTRE_ZONE, as UTC."""
    return day.cast(pl.Date).cast(pl.Datetime("us")).dt.replace_time_zone(CENTRE_ZONE).dt.convert_time_zone("UTC")
