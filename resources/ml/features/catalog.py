"""The features a model may use, per horizon: name, kind, description, owner, and the availability
rule each follows (``known``, a key of resources/ml/features/availability.py's ``RULES``).

How the values are computed is resources/ml/features/point_in_time.py; the proof that they read
nothing from after their prediction time is resources/ml/features/time_guard.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from resources.ml.features.availability import DAY_AHEAD, NOWCAST, RULES

DATA_SCIENCE = "team:data-science"


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "numeric" | "categorical"
    description: str
    known: str = "schedule"  # a key of availability.RULES (the audit refuses anything else)
    owner: str = DATA_SCIENCE

    @property
    def dtype(self) -> str:
        return "string" if self.kind == "categorical" else "float64"


def _wx(name: str, description: str) -> Feature:
    return Feature(name, "numeric", description + " Known at the prediction time (observation + 1 h).", "weather")


DAY_AHEAD_FEATURES: tuple[Feature, ...] = (
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
    Feature(
        "origin_hour_departures",
        "numeric",
        "Departures scheduled at the origin in the same hour (schedule congestion).",
    ),
    Feature("origin_day_departures", "numeric", "Departures scheduled at the origin that day."),
    Feature("carrier_day_departures", "numeric", "Departures the carrier scheduled from the origin that day."),
    Feature("plane_leg_of_day", "numeric", "Which scheduled leg of the day this is for the aircraft (1 = first)."),
    Feature("plane_legs_of_day", "numeric", "Legs scheduled for the aircraft that day."),
    Feature(
        "plane_gap_minutes",
        "numeric",
        "Scheduled minutes since the aircraft's previous New York departure that day (null on its first leg).",
    ),
    Feature(
        "plane_turn_slack_minutes",
        "numeric",
        "Gap to the previous departure minus twice that leg's scheduled block time: the buffer the out-and-back rotation leaves.",
    ),
    Feature(
        "plane_age_years",
        "numeric",
        "Years since the aircraft was built (registry version valid that day).",
        "registry",
    ),
    Feature("plane_seats", "numeric", "Seats of the aircraft.", "registry"),
    Feature("plane_engines", "numeric", "Engines of the aircraft.", "registry"),
    Feature("plane_engine_type", "categorical", "Engine type of the aircraft.", "registry"),
    _wx("wx_temp_f", "Origin temperature, last reading."),
    _wx("wx_dewpoint_f", "Origin dew point, last reading."),
    _wx("wx_humidity_pct", "Origin relative humidity, last reading."),
    _wx("wx_wind_speed_mph", "Origin wind speed, last reading."),
    _wx("wx_wind_gust_mph", "Origin wind gust, last reading."),
    _wx("wx_precip_in", "Origin precipitation, last reading."),
    _wx("wx_pressure_mb", "Origin sea-level pressure, last reading."),
    _wx("wx_visibility_mi", "Origin visibility, last reading."),
    _wx("wx_reading_age_minutes", "Minutes between the last reading and the prediction time."),
    _wx("wx_precip_3h_in", "Origin precipitation over the 3 hours up to the last reading."),
    _wx("wx_precip_24h_in", "Origin precipitation over the 24 hours up to the last reading."),
    _wx("wx_min_visibility_24h_mi", "Lowest origin visibility over the 24 hours up to the last reading."),
    _wx("wx_max_wind_24h_mph", "Strongest origin wind over the 24 hours up to the last reading."),
    _wx(
        "wx_pressure_change_12h_mb",
        "Change of origin pressure over the 12 hours up to the last reading (falling: weather coming).",
    ),
    _wx("wx_temp_change_24h_f", "Change of origin temperature over the 24 hours up to the last reading."),
    Feature(
        "route_late_rate_28d",
        "numeric",
        "Smoothed late rate of the route over outcomes known in the 28 days up to the cut-off.",
        "history",
    ),
    Feature(
        "route_flights_28d",
        "numeric",
        "Flights of the route with outcomes known in the 28 days up to the cut-off.",
        "history",
    ),
    Feature(
        "carrier_late_rate_28d", "numeric", "Smoothed late rate of the carrier, 28 days up to the cut-off.", "history"
    ),
    Feature(
        "carrier_origin_late_rate_28d",
        "numeric",
        "Smoothed late rate of the carrier at the origin, 28 days up to the cut-off.",
        "history",
    ),
    Feature("origin_late_rate_7d", "numeric", "Smoothed late rate at the origin, 7 days up to the cut-off.", "history"),
    Feature(
        "origin_late_rate_1d",
        "numeric",
        "Smoothed late rate at the origin of outcomes that became known on the day of the cut-off.",
        "history",
    ),
    Feature(
        "flight_late_rate_28d",
        "numeric",
        "Smoothed late rate of this carrier and flight number, 28 days up to the cut-off.",
        "history",
    ),
    Feature(
        "dest_late_rate_28d",
        "numeric",
        "Smoothed late rate of flights to the destination, 28 days up to the cut-off.",
        "history",
    ),
    Feature(
        "carrier_origin_late_rate_7d",
        "numeric",
        "Smoothed late rate of the carrier at the origin, 7 days up to the cut-off.",
        "history",
    ),
    Feature(
        "carrier_late_rate_1d",
        "numeric",
        "Smoothed late rate of the carrier of outcomes that became known on the day of the cut-off.",
        "history",
    ),
)


def _ops(name: str, description: str) -> Feature:
    return Feature(name, "numeric", description + " Known at the prediction time (departure + 15 min).", "operations")


OPERATIONS: tuple[Feature, ...] = (
    _ops("ops_origin_departures_2h", "Departures from the origin in the 2 hours before the prediction time."),
    _ops("ops_origin_mean_dep_delay_2h", "Mean departure delay of those departures, minutes."),
    _ops("ops_origin_late_dep_share_2h", "Share of those departures 15+ minutes late (smoothed)."),
    _ops(
        "ops_origin_mean_dep_delay_today",
        "Mean departure delay of the origin's departures so far on the prediction time's local day.",
    ),
    _ops(
        "ops_origin_cancellations_today", "Cancellations at the origin known so far on the prediction time's local day."
    ),
    _ops(
        "ops_carrier_origin_mean_dep_delay_today",
        "Mean departure delay of the carrier's departures from the origin so far on the prediction time's local day.",
    ),
    _ops(
        "ops_origin_overdue_departures",
        "Flights scheduled to have left the origin by the prediction time that have neither departed nor been cancelled.",
    ),
    _ops(
        "ops_origin_overdue_mean_minutes",
        "Mean minutes those overdue flights are past their scheduled departure (0 when none).",
    ),
    Feature(
        "ops_origin_late_arrival_share_today",
        "numeric",
        "Smoothed late share of the origin's flights whose outcome became known so far on the prediction time's local day (arrival + 15 min).",
        "history",
    ),
    Feature(
        "ops_dest_late_arrival_share_today",
        "numeric",
        "Smoothed late share of flights to the destination whose outcome became known so far that local day.",
        "history",
    ),
    Feature(
        "ops_origin_late_arrival_share_3h",
        "numeric",
        "Smoothed late share of the origin's flights whose outcome became known in the 3 hours before the prediction time.",
        "history",
    ),
    Feature(
        "ops_dest_late_arrival_share_3h",
        "numeric",
        "Smoothed late share of flights to the destination whose outcome became known in the 3 hours before the prediction time.",
        "history",
    ),
    Feature(
        "ops_carrier_late_arrival_share_today",
        "numeric",
        "Smoothed late share of the carrier's flights whose outcome became known so far that local day.",
        "history",
    ),
)
PREVIOUS_LEG: tuple[Feature, ...] = (
    _ops(
        "ops_prev_leg_dep_delay",
        "Departure delay of the aircraft's previous leg of the day, if it has departed (null otherwise).",
    ),
    _ops(
        "ops_prev_leg_overdue_minutes",
        "Minutes the aircraft's previous leg is past its scheduled departure without having departed (0 if departed or not yet due; null without previous leg).",
    ),
    Feature(
        "ops_prev_leg_arr_delay",
        "numeric",
        "Arrival delay of the aircraft's previous leg of the day at its destination, if known by the prediction time (arrival + 15 min; null otherwise).",
        "history",
    ),
)

# What flights to the destination lost between gate and arrival (taxi, holding, a ground-delay
# programme) over a window before the prediction time: the destination's congestion, whose weather
# the deliveries do not hold. Computed for every window here; each horizon uses those that gained
# on validation and the walk-forward months (docs/model.md: 24 h did not, for the day-ahead model).
DESTINATION_CONGESTION_HOURS = (3, 8, 24)


def _congestion(hours: int) -> Feature:
    return Feature(
        f"ops_dest_enroute_gain_{hours}h",
        "numeric",
        "Mean arrival minus departure delay (minutes lost between gate and arrival) of flights to the destination "
        f"whose outcome became known in the {hours} hours before the prediction time.",
        "history",
    )


FEATURES_BY_HORIZON: dict[str, tuple[Feature, ...]] = {
    DAY_AHEAD: DAY_AHEAD_FEATURES + OPERATIONS + (_congestion(3), _congestion(8)),
    NOWCAST: DAY_AHEAD_FEATURES
    + OPERATIONS
    + PREVIOUS_LEG
    + tuple(_congestion(h) for h in DESTINATION_CONGESTION_HOURS),
}
# The production horizon: "before a day starts, every flight scheduled that day gets p_late".
FEATURES = FEATURES_BY_HORIZON[DAY_AHEAD]
FEATURE_NAMES = tuple(f.name for f in FEATURES)
CATEGORICAL = tuple(f.name for f in FEATURES if f.kind == "categorical")
KEY_COLUMNS = ("flight_id", "flight_date", "batch_id", "horizon", "as_of")


def feature_names(horizon: str) -> tuple[str, ...]:
    return tuple(f.name for f in FEATURES_BY_HORIZON[horizon])


def undeclared_rules(features: tuple[Feature, ...]) -> list[str]:
    return [f"{f.name} (known {f.known!r})" for f in features if f.known not in RULES]
