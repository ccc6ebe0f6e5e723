"""Point-in-time flight features: one code path for training sets and for scoring days.

The use case: before a day starts, predict which of its scheduled flights will arrive late.
Every feature of a flight on day D uses only what is known before D starts:

- the schedule of D itself (times, carrier, route, distance, how busy the origin is that hour):
  airlines publish schedules weeks ahead;
- the calendar (weekday, holidays). Month and day of year are left out on purpose: trained on
  January-August, they teach the model a season that the later test window does not repeat
  (validation ROC AUC of the boosted model fell from 0.698 to 0.694 with them);
- the aircraft's registry attributes in the version valid on D (SCD2 snapshot; the first
  version known is assumed valid from the start, since the registry was delivered once);
- weather at the origin at the scheduled hour: the *observed* weather stands in for a forecast
  (a perfect-forecast assumption; real deployments would join the forecast issued the day before);
- history: late rates of the route, carrier, origin and carrier-at-origin over days strictly
  before D (the label of a day is complete only after its last arrival).

The label, applied the same way in training, scoring and monitoring: a flight is **late** when it
arrived 15 or more minutes late (the US DOT on-time definition) **or** did not arrive at all
(cancelled or diverted): for a passenger planning the day, neither is on time. DOT's own on-time
statistics count them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

DATA_SCIENCE = "team:data-science"
LATE_MINUTES = 15
HISTORY_DAYS = 28
PRIOR_LATE_RATE, PRIOR_WEIGHT = 0.25, 10  # smoothing: a route with 2 flights is not "100% late"

# Columns recorded at or after departure: no feature of day D may depend on D's values of these.
POST_DEPARTURE_COLUMNS = (
    "dep_time", "dep_delay", "arr_time", "arr_delay", "air_time",
    "actual_departure_local", "actual_departure_utc", "actual_arrival_local", "actual_arrival_utc",
    "cancelled", "diverted", "arrived_late",
)


# When a feature's value becomes known. Everything the model reads must be known before the
# flight's day starts; the leakage audit fails the build for any other declaration.
AVAILABILITY = {
    "schedule": "the published timetable (carriers publish weeks ahead)",
    "calendar": "the calendar",
    "registry": "the aircraft registry version valid on the day",
    "forecast": "origin weather: observed weather stands in for the forecast (perfect-forecast assumption)",
    "history": "labels of days strictly before the flight's date",
}
KNOWN_BEFORE_DAY = frozenset(AVAILABILITY)


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "numeric" | "categorical"
    description: str
    known: str = "schedule"  # a key of AVAILABILITY (or anything else, which the audit refuses)
    owner: str = DATA_SCIENCE

    @property
    def dtype(self) -> str:
        return "string" if self.kind == "categorical" else "float64"


FEATURES: tuple[Feature, ...] = (
    Feature("carrier", "categorical", "Airline code."),
    Feature("origin", "categorical", "Departure airport (EWR, JFK, LGA)."),
    Feature("dest", "categorical", "Destination airport."),
    Feature("distance_mi", "numeric", "Great-circle distance of the route, miles."),
    Feature("sched_dep_hour", "numeric", "Scheduled departure hour, origin local time."),
    Feature("sched_dep_minute_of_day", "numeric", "Scheduled departure, minutes after local midnight."),
    Feature("sched_arr_minute_of_day", "numeric", "Scheduled arrival, minutes after destination midnight."),
    Feature("sched_block_minutes", "numeric", "Scheduled gate-to-gate minutes (null without destination time zone)."),
    Feature("day_of_week", "numeric", "ISO weekday of the scheduled date (1 = Monday).", "calendar"),
    Feature("is_holiday", "numeric", "1 on US federal holidays.", "calendar"),
    Feature("days_to_nearest_holiday", "numeric", "Days to the nearest US federal holiday.", "calendar"),
    Feature("origin_hour_departures", "numeric", "Departures scheduled at the origin in the same hour (schedule congestion)."),
    Feature("origin_day_departures", "numeric", "Departures scheduled at the origin that day."),
    Feature("carrier_day_departures", "numeric", "Departures the carrier scheduled from the origin that day."),
    Feature("plane_leg_of_day", "numeric", "Which scheduled leg of the day this is for the aircraft (1 = first)."),
    Feature("plane_legs_of_day", "numeric", "Legs scheduled for the aircraft that day."),
    Feature("plane_gap_minutes", "numeric", "Scheduled minutes since the aircraft's previous New York departure that day (null on its first leg)."),
    Feature("plane_turn_slack_minutes", "numeric", "Gap to the previous departure minus twice that leg's scheduled block time: the buffer the out-and-back rotation leaves."),
    Feature("plane_age_years", "numeric", "Years since the aircraft was built (registry version valid that day).", "registry"),
    Feature("plane_seats", "numeric", "Seats of the aircraft.", "registry"),
    Feature("plane_engines", "numeric", "Engines of the aircraft.", "registry"),
    Feature("plane_engine_type", "categorical", "Engine type of the aircraft.", "registry"),
    Feature("temp_f", "numeric", "Origin temperature at the scheduled hour (perfect-forecast assumption).", "forecast"),
    Feature("dewpoint_f", "numeric", "Origin dew point at the scheduled hour (perfect-forecast assumption).", "forecast"),
    Feature("humidity_pct", "numeric", "Origin relative humidity at the scheduled hour (perfect-forecast assumption).", "forecast"),
    Feature("wind_speed_mph", "numeric", "Origin wind speed at the scheduled hour (perfect-forecast assumption).", "forecast"),
    Feature("wind_gust_mph", "numeric", "Origin wind gust at the scheduled hour (perfect-forecast assumption).", "forecast"),
    Feature("precip_in", "numeric", "Origin precipitation at the scheduled hour (perfect-forecast assumption).", "forecast"),
    Feature("pressure_mb", "numeric", "Origin sea-level pressure at the scheduled hour (perfect-forecast assumption).", "forecast"),
    Feature("visibility_mi", "numeric", "Origin visibility at the scheduled hour (perfect-forecast assumption).", "forecast"),
    Feature("origin_day_precip_in", "numeric", "Origin precipitation over the whole day (perfect-forecast assumption).", "forecast"),
    Feature("origin_day_min_visibility_mi", "numeric", "Lowest origin visibility of the day (perfect-forecast assumption).", "forecast"),
    Feature("origin_day_max_wind_mph", "numeric", "Strongest origin wind of the day (perfect-forecast assumption).", "forecast"),
    Feature("origin_prior_3h_precip_in", "numeric", "Origin precipitation in the 3 hours before the scheduled hour (perfect-forecast assumption).", "forecast"),
    Feature("route_late_rate_28d", "numeric", "Smoothed late rate of the route over the 28 days before the flight's date.", "history"),
    Feature("route_flights_28d", "numeric", "Flights of the route over the 28 days before the flight's date.", "history"),
    Feature("carrier_late_rate_28d", "numeric", "Smoothed late rate of the carrier over the 28 days before.", "history"),
    Feature("carrier_origin_late_rate_28d", "numeric", "Smoothed late rate of the carrier at the origin over the 28 days before.", "history"),
    Feature("origin_late_rate_7d", "numeric", "Smoothed late rate at the origin over the 7 days before.", "history"),
    Feature("origin_late_rate_1d", "numeric", "Smoothed late rate at the origin the day before.", "history"),
    # Kept because validation (Sep-Oct) confirmed them; every attempt, kept or not, is in the
    # README's "Model attempts" table.
    Feature("flight_late_rate_28d", "numeric", "Smoothed late rate of this carrier and flight number over the 28 days before.", "history"),
    Feature("dest_late_rate_28d", "numeric", "Smoothed late rate of flights to the destination over the 28 days before.", "history"),
    Feature("carrier_origin_late_rate_7d", "numeric", "Smoothed late rate of the carrier at the origin over the 7 days before.", "history"),
    Feature("carrier_late_rate_1d", "numeric", "Smoothed late rate of the carrier the day before.", "history"),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
CATEGORICAL = tuple(f.name for f in FEATURES if f.kind == "categorical")
KEY_COLUMNS = ("flight_id", "flight_date", "batch_id")


class LeakageError(ValueError):
    """A feature depends on information recorded after departure."""


@dataclass
class FeatureInputs:
    flights: pl.DataFrame  # curated.fct_flights for [start - HISTORY_DAYS, end)
    weather: pl.DataFrame  # staging.stg_nycflights__weather for [start - 1 day, end)
    planes: pl.DataFrame  # snapshots.planes_snapshot, every version
    dates: pl.DataFrame  # curated.dim_dates


def late_label() -> pl.Expr:
    """The one definition of the label (see module docstring)."""
    return (pl.col("cancelled") | pl.col("diverted") | (pl.col("arr_delay") >= LATE_MINUTES)).cast(pl.Int8)


def _smoothed(late: pl.Expr, n: pl.Expr) -> pl.Expr:
    return (late + PRIOR_LATE_RATE * PRIOR_WEIGHT) / (n + PRIOR_WEIGHT)


def _history(flights: pl.DataFrame, keys: list[str], days: int, name: str, count_name: str | None = None) -> pl.DataFrame:
    """Per (keys, flight_date): late counts over [date - days, date), never the date itself."""
    daily = (
        flights.group_by([*keys, "flight_date"])
        .agg(pl.len().alias("_n"), late_label().sum().alias("_late"))
        .sort("flight_date")
    )
    rolled = daily.rolling(index_column="flight_date", period=f"{days}d", closed="left", group_by=keys).agg(
        pl.col("_n").sum().alias("_n_sum"), pl.col("_late").sum().alias("_late_sum")
    )
    out = [_smoothed(pl.col("_late_sum"), pl.col("_n_sum")).alias(name)]
    if count_name:
        out.append(pl.col("_n_sum").cast(pl.Float64).alias(count_name))
    return rolled.select(*keys, "flight_date", *out)


def _aircraft(day_flights: pl.DataFrame) -> pl.DataFrame:
    """Which aircraft each flight's aircraft features describe, and its rotation that day.

    A missing tail number is not schedule information: in the deliveries it is decided after the
    fact (all 2,512 flights without one were cancelled, and the first model scored them
    p_late 0.994). So the model never sees it missing: such a flight takes the aircraft and
    rotation of the carrier's nearest scheduled departure from the same origin that day (a
    hot-deck donor; failing that, the carrier's nearest departure from any origin). Donor values
    are real values of real flights, so no value pattern marks an imputed row either.
    """
    rotation = ["tailnum_key", "flight_date"]
    previous = pl.col("scheduled_departure_utc").shift(1).over(rotation)
    previous_block = (pl.col("scheduled_arrival_utc") - pl.col("scheduled_departure_utc")).shift(1).over(rotation)
    legs = day_flights.filter(pl.col("tailnum_key").is_not_null()).sort("scheduled_departure_utc", "flight_id").select(
        "flight_id", "carrier", "origin", "flight_date", "scheduled_departure_utc",
        pl.col("tailnum_key").alias("aircraft_key"),
        pl.col("scheduled_departure_utc").rank("ordinal").over(rotation).cast(pl.Float64).alias("plane_leg_of_day"),
        pl.len().over(rotation).cast(pl.Float64).alias("plane_legs_of_day"),
        (pl.col("scheduled_departure_utc") - previous).dt.total_minutes().cast(pl.Float64).alias("plane_gap_minutes"),
        # Out and back: a 100-minute gap after a 45-minute leg leaves 10 minutes to turn twice.
        ((pl.col("scheduled_departure_utc") - previous).dt.total_minutes()
         - 2 * previous_block.dt.total_minutes()).cast(pl.Float64).alias("plane_turn_slack_minutes"),
    )
    out = ["flight_id", "aircraft_key", "plane_leg_of_day", "plane_legs_of_day", "plane_gap_minutes",
           "plane_turn_slack_minutes"]
    missing = day_flights.filter(pl.col("tailnum_key").is_null()).select(
        "flight_id", "carrier", "origin", "flight_date", "scheduled_departure_utc")
    if missing.height == 0 or legs.height == 0:
        return legs.select(out)
    # Ties in departure time are broken by the donor's flight id, never by aircraft_key: that is
    # a keyed hash, so each installation (each pseudonym key) picked other donors for ~100 flights
    # of the year, and models trained on the same deliveries differed (validation ROC AUC 0.7210
    # vs 0.7229 between two fresh clones, 2026-12-02).
    donors = legs.rename({"flight_id": "_donor_flight_id"}).sort("scheduled_departure_utc", "_donor_flight_id")
    filled = []
    for by in (["carrier", "origin", "flight_date"], ["carrier", "flight_date"]):
        matched = missing.sort("scheduled_departure_utc", "flight_id").join_asof(
            donors.drop([c for c in ("origin",) if c not in by]), on="scheduled_departure_utc",
            by=by, strategy="nearest", check_sortedness=False,
        )
        found = matched.filter(pl.col("aircraft_key").is_not_null())
        filled.append(found.select(out))
        missing = missing.join(found.select("flight_id"), on="flight_id", how="anti")
        if missing.height == 0:
            break
    return pl.concat([legs.select(out), *filled])


def _planes_as_of(aircraft: pl.DataFrame, planes: pl.DataFrame) -> pl.DataFrame:
    versions = planes.with_columns(
        # The first version known stands for the aircraft since before any flight we hold.
        pl.when(pl.col("dbt_valid_from") == pl.col("dbt_valid_from").min().over("tailnum_key"))
        .then(None).otherwise(pl.col("dbt_valid_from").dt.date()).alias("_from"),
        pl.col("dbt_valid_to").dt.date().alias("_to"),
    ).select(pl.col("tailnum_key").alias("aircraft_key"), "_from", "_to", "year_built", "seats", "engines",
             "engine_type")
    joined = aircraft.join(versions, on="aircraft_key", how="inner")
    valid = joined.filter(
        (pl.col("_from").is_null() | (pl.col("_from") <= pl.col("flight_date")))
        & (pl.col("_to").is_null() | (pl.col("_to") > pl.col("flight_date")))
    ).unique("flight_id", keep="last")
    return valid.select(
        "flight_id",
        (pl.col("flight_date").dt.year() - pl.col("year_built")).cast(pl.Float64).alias("plane_age_years"),
        pl.col("seats").cast(pl.Float64).alias("plane_seats"),
        pl.col("engines").cast(pl.Float64).alias("plane_engines"),
        pl.col("engine_type").alias("plane_engine_type"),
    )


def _minute_of_day(column: str) -> pl.Expr:
    t = pl.col(column)
    return (t.dt.hour().cast(pl.Int32) * 60 + t.dt.minute().cast(pl.Int32)).cast(pl.Float64)


def _base(inputs: FeatureInputs, start: date, end: date) -> pl.DataFrame:
    """The day's flights with every column a feature may be computed from."""
    f = inputs.flights
    day = f.filter(pl.col("flight_date").is_between(start, end, closed="left"))
    base = day.with_columns(
        pl.col("distance").cast(pl.Float64).alias("distance_mi"),
        pl.col("scheduled_departure_local").dt.hour().cast(pl.Float64).alias("sched_dep_hour"),
        # dt.hour() is Int8: hour * 60 wrapped (06:00 became 104, values spanned -128..127) until
        # the scoring service showed 104 for a 06:00 departure; widened before multiplying.
        _minute_of_day("scheduled_departure_local").alias("sched_dep_minute_of_day"),
        _minute_of_day("scheduled_arrival_local").alias("sched_arr_minute_of_day"),
        (pl.col("scheduled_arrival_utc") - pl.col("scheduled_departure_utc")).dt.total_minutes()
        .cast(pl.Float64).alias("sched_block_minutes"),
        pl.len().over("origin", "flight_date", pl.col("scheduled_departure_local").dt.hour())
        .cast(pl.Float64).alias("origin_hour_departures"),
        pl.len().over("origin", "flight_date").cast(pl.Float64).alias("origin_day_departures"),
        pl.len().over("carrier", "origin", "flight_date").cast(pl.Float64).alias("carrier_day_departures"),
        pl.col("scheduled_departure_local").dt.truncate("1h").alias("_weather_hour"),
    )
    dates = inputs.dates.select(
        pl.col("date_day").alias("flight_date"),
        pl.col("day_of_week").cast(pl.Float64),
        pl.col("is_holiday").cast(pl.Float64),
        pl.col("days_to_nearest_holiday").cast(pl.Float64),
    )
    daily_weather = inputs.weather.group_by("origin", pl.col("observed_hour_local").dt.date().alias("flight_date")).agg(
        # Rounded: the warehouse returns rows in no fixed order, and a float sum in another order
        # differed by 5.6e-17 on 950 flights of Jan-Feb, enough to flip a tree split (p_late off by
        # up to 1e-3) when the same deliveries were rebuilt. Precipitation is delivered in 0.01 in.
        pl.col("precip_in").sum().round(6).alias("origin_day_precip_in"),
        pl.col("visibility_mi").min().alias("origin_day_min_visibility_mi"),
        pl.col("wind_speed_mph").max().alias("origin_day_max_wind_mph"),
    )
    prior_precip = (
        inputs.weather.sort("observed_hour_local")
        .rolling(index_column="observed_hour_local", period="3h", closed="left", group_by="origin")
        # Rounded for the same reason: a rolling sum adds and subtracts as it slides, so its last
        # bits depend on where the series starts; built from a month of weather the value was
        # -2.8e-17 where built from one day's it was 0.0 (622 of 949 flights of 2013-02-20),
        # which sent flights down another branch (p_late off by up to 0.057 in the scoring service).
        .agg(pl.col("precip_in").sum().round(6).alias("origin_prior_3h_precip_in"))
        .rename({"observed_hour_local": "_weather_hour"})
    )
    weather = inputs.weather.select(
        "origin", pl.col("observed_hour_local").alias("_weather_hour"),
        *[pl.col(c).cast(pl.Float64) for c in ("temp_f", "dewpoint_f", "humidity_pct", "wind_speed_mph",
                                               "wind_gust_mph", "precip_in", "pressure_mb", "visibility_mi")],
    )
    # History is computed from every flight we hold before the window, never from the window's
    # own labels for its own days (closed="left" windows).
    hist = [
        (["origin", "dest"], _history(f, ["origin", "dest"], HISTORY_DAYS, "route_late_rate_28d", "route_flights_28d")),
        (["carrier"], _history(f, ["carrier"], HISTORY_DAYS, "carrier_late_rate_28d")),
        (["carrier", "origin"], _history(f, ["carrier", "origin"], HISTORY_DAYS, "carrier_origin_late_rate_28d")),
        (["origin"], _history(f, ["origin"], 7, "origin_late_rate_7d")),
        (["origin"], _history(f, ["origin"], 1, "origin_late_rate_1d")),
        (["carrier", "flight_number"], _history(f, ["carrier", "flight_number"], HISTORY_DAYS, "flight_late_rate_28d")),
        (["dest"], _history(f, ["dest"], HISTORY_DAYS, "dest_late_rate_28d")),
        (["carrier", "origin"], _history(f, ["carrier", "origin"], 7, "carrier_origin_late_rate_7d")),
        (["carrier"], _history(f, ["carrier"], 1, "carrier_late_rate_1d")),
    ]
    base = (
        base.join(dates, on="flight_date", how="left")
        .join(weather, on=["origin", "_weather_hour"], how="left")
        .join(daily_weather, on=["origin", "flight_date"], how="left")
        .join(prior_precip, on=["origin", "_weather_hour"], how="left")
    )
    for keys, table in hist:
        base = base.join(table, on=[*keys, "flight_date"], how="left")
    aircraft = _aircraft(day)
    return (
        base.join(aircraft.drop("aircraft_key"), on="flight_id", how="left")
        .join(_planes_as_of(aircraft.join(day.select("flight_id", "flight_date"), on="flight_id"), inputs.planes),
              on="flight_id", how="left")
    )


def build_features(
    inputs: FeatureInputs, start: date, end: date, extra: Mapping[str, pl.Expr] | None = None
) -> pl.DataFrame:
    """Features of every flight scheduled in [start, end): keys, then FEATURES in order.
    ``extra`` adds expressions over the same base (for experiments; the leakage guard checks them)."""
    base = _base(inputs, start, end)
    extra = dict(extra or {})
    cols = [pl.col(c) for c in FEATURE_NAMES] + [e.alias(n) for n, e in extra.items()]
    return base.select(*KEY_COLUMNS, *cols).sort("flight_id")


def labels(flights: pl.DataFrame) -> pl.DataFrame:
    return flights.select("flight_id", late_label().alias("is_late"))


def _perturb_post_departure(flights: pl.DataFrame, day: date) -> list[pl.DataFrame]:
    on_day = pl.col("flight_date") == day
    present = [c for c in POST_DEPARTURE_COLUMNS if c in flights.columns]
    nulled = flights.with_columns([pl.when(on_day).then(None).otherwise(pl.col(c)).alias(c) for c in present])
    shifted = flights.with_columns([
        pl.when(on_day).then(
            ~pl.col(c) if flights.schema[c] == pl.Boolean
            else pl.col(c) + (pl.duration(minutes=997) if flights.schema[c].is_temporal() else 997)
        ).otherwise(pl.col(c)).alias(c)
        for c in present
    ])
    return [nulled, shifted]


def leakage_violations(
    inputs: FeatureInputs, day: date, extra: Mapping[str, pl.Expr] | None = None
) -> list[str]:
    """Features of ``day`` that change when that day's post-departure columns are blanked or
    altered: each such feature depends on information not known before the day starts."""
    named = [n for n in (*FEATURE_NAMES, *(extra or {})) if n in POST_DEPARTURE_COLUMNS]
    end = day + timedelta(days=1)
    reference = build_features(inputs, day, end, extra)
    changed: set[str] = set(named)
    for flights in _perturb_post_departure(inputs.flights, day):
        altered = build_features(FeatureInputs(flights, inputs.weather, inputs.planes, inputs.dates), day, end, extra)
        for col in reference.columns:
            if col in KEY_COLUMNS:
                continue
            if not reference[col].equals(altered[col], null_equal=True):
                changed.add(col)
    return sorted(changed)


def assert_no_leakage(inputs: FeatureInputs, day: date, extra: Mapping[str, pl.Expr] | None = None) -> None:
    bad = leakage_violations(inputs, day, extra)
    if bad:
        raise LeakageError(
            f"feature(s) {', '.join(bad)} depend on information recorded after departure "
            f"({', '.join(POST_DEPARTURE_COLUMNS[:5])}, ...) on {day}"
        )
