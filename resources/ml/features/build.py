"""Build a window's features for each horizon, check them against time, store them in the lake."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from resources.core.parquet_io import write_parquet_atomic
from resources.core.settings import Settings
from resources.ml.features.availability import DAY_AHEAD, HORIZONS, NOWCAST
from resources.ml.features.catalog import FEATURES_BY_HORIZON
from resources.ml.features.point_in_time import FLIGHT_LOOKBACK_DAYS, build_features, target_rows
from resources.ml.features.time_guard import assert_point_in_time
from resources.ml.lake import feature_definitions_path, feature_table, load_feature_inputs, write_lake_days
from resources.raw.zone import by_day, days_in


class DayBeforeMissing(ValueError):
    """Day-ahead features of a day need the day before delivered (its outcomes known at the cut-off)."""


def require_day_before(flights: pl.DataFrame, days: list[date]) -> None:
    """Refuse to build day-ahead features of a day whose day before is not delivered while earlier
    days are: the history would silently lack the outcomes known at the cut-off."""
    delivered = set(flights.filter(pl.col("actuals_delivered"))["flight_date"].unique().to_list())
    for day in days:
        before = day - timedelta(days=1)
        if before not in delivered and any(d < before for d in delivered):
            raise DayBeforeMissing(
                f"day-ahead features of {day} need the flights of {before} delivered (they hold the outcomes "
                f"known at the cut-off): materialize curated/fct_flights for {before} first"
            )


@dataclass(frozen=True)
class FeatureBuild:
    rows_by_day: dict[date, int]
    time_checked: list[date]
    horizons: tuple[str, ...] = HORIZONS

    @property
    def rows(self) -> int:
        return sum(self.rows_by_day.values())


# Days loaded per pass. A pass holds its days' flights plus the history before them; the whole
# year in one pass held every flight and feature at once (~12 GB of features alone at SF=100). A
# flight's features read only rows known at its prediction time, so passes give the same values
# as one (tests/test_ml.py checks a two-month window both ways).
FEATURE_CHUNK_DAYS = 31
# Flights built per call within a pass: a build holds ~1.7 kB per flight beside the pass's inputs
# (a 31-day pass at SF=100, 2.9 M flights, peaked at 8.7 GiB for one horizon; 7 days at 4.2 GiB).
# At SF=1 a whole pass is one call.
FEATURE_BUILD_ROWS = 600_000


def day_groups(rows_by_day: dict[date, int], days: list[date], max_rows: int) -> list[list[date]]:
    """``days`` in consecutive groups of at most ``max_rows`` rows (a larger day is a group alone)."""
    groups: list[list[date]] = []
    total = 0
    for day in days:
        n = rows_by_day.get(day, 0)
        if groups and total + n <= max_rows:
            groups[-1].append(day)
            total += n
        else:
            groups.append([day])
            total = n
    return groups


def build_and_store_features(
    settings: Settings,
    start: date,
    end: date,
    chunk_days: int = FEATURE_CHUNK_DAYS,
    horizons: tuple[str, ...] = HORIZONS,
    build_rows: int = FEATURE_BUILD_ROWS,
) -> FeatureBuild:
    """Features of [start, end) for each horizon, loaded in passes of ``chunk_days`` and built
    ``build_rows`` flights at a time. The time guard (features.time_violations) runs on the
    window's first and last day for every horizon before anything is written, so a feature that
    reads the future fails the build with the files unchanged. A one-day window (the nightly
    increment) stores the features the guard built and checked. Rows per day are counted once
    (every horizon has one row per flight)."""
    days = days_in(start, end)
    checked = sorted({days[0], days[-1]})
    guarded: dict[str, pl.DataFrame] = {}
    for day in checked:
        inputs = load_feature_inputs(settings, day, day + timedelta(days=1))
        for horizon in horizons:
            guarded[horizon] = assert_point_in_time(inputs, day, horizon)
    if len(days) > 1:
        guarded, inputs = {}, None
    rows = {}
    history: tuple[pl.DataFrame, date] | None = None  # the flights the pass before read, and to when
    for i in range(0, len(days), chunk_days):
        chunk = days[i : i + chunk_days]
        a, b = chunk[0], chunk[-1] + timedelta(days=1)
        inputs = inputs or load_feature_inputs(settings, a, b, history)
        if DAY_AHEAD in horizons:
            require_day_before(inputs.flights, chunk)
        targets = target_rows(inputs, a, b).group_by("flight_date").len()
        for group in day_groups(dict(targets.iter_rows()), chunk, build_rows):
            ga, gb = group[0], group[-1] + timedelta(days=1)
            for horizon in horizons:
                features = guarded.pop(horizon, None)
                if features is None:
                    features = build_features(inputs, ga, gb, horizon)
                parts = by_day(features, "flight_date", group)
                write_lake_days(settings, feature_table(horizon), parts)  # the group's days: one transaction
                rows.update({day: part.height for day, part in parts.items()})
                del features, parts
        # What the next pass's look-back needs of this pass's flights, the rest released before it loads.
        history = (inputs.flights.filter(pl.col("flight_date") >= b - timedelta(days=FLIGHT_LOOKBACK_DAYS)), b)
        inputs = None
    write_parquet_atomic(
        pl.DataFrame(
            [
                {
                    "name": f.name,
                    "description": f.description,
                    "dtype": f.dtype,
                    "kind": f.kind,
                    "known": f.known,
                    "owner": f.owner,
                    "horizons": ", ".join(h for h in HORIZONS if f in FEATURES_BY_HORIZON[h]),
                }
                for f in FEATURES_BY_HORIZON[NOWCAST]
            ]
        ),
        feature_definitions_path(settings),
    )
    return FeatureBuild(rows, checked, horizons)
