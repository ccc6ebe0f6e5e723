"""The time guard: for sampled prediction times T of a built day, every source row not yet known
at T is rewritten with garbage (availability.garble_after) and the features of flights predicted at
or before T must not move. Feature builds run it on every day they store (features/build.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta

import polars as pl

from resources.ml.features import availability as av
from resources.ml.features.availability import DAY_AHEAD
from resources.ml.features.catalog import FEATURES_BY_HORIZON, KEY_COLUMNS, undeclared_rules
from resources.ml.features.point_in_time import FeatureInputs, build_features


class LeakageError(ValueError):
    """A feature depends on information not known at its prediction time."""


Build = Callable[[FeatureInputs, date, date], pl.DataFrame]


def prediction_times(features: pl.DataFrame, horizon: str, samples: int = 4) -> list[datetime]:
    """The prediction times the guard tries on a built day: the cut-off (day-ahead), else the
    as_of of flights spread over the day."""
    times = features["as_of"].unique().sort()
    if horizon == DAY_AHEAD or times.len() <= samples:
        return times.to_list()
    return [times[int(q * (times.len() - 1))] for q in [(i + 1) / (samples + 1) for i in range(samples)]]


def _builder(horizon: str, extra: Mapping[str, pl.Expr] | None) -> Build:
    def build(i: FeatureInputs, a: date, b: date) -> pl.DataFrame:
        return build_features(i, a, b, horizon, extra)

    return build


def _annotated(inputs: FeatureInputs) -> FeatureInputs:
    return replace(inputs, flights=av.annotate_flights(inputs.flights), weather=av.annotate_weather(inputs.weather))


def time_violations(
    inputs: FeatureInputs,
    day: date,
    horizon: str = DAY_AHEAD,
    build: Build | None = None,
    extra: Mapping[str, pl.Expr] | None = None,
) -> list[str]:
    """Features of ``day`` that move when every row not yet known at a prediction time T is
    rewritten with garbage (availability.garble_after), for the flights predicted at or before T."""
    build = build or _builder(horizon, extra)
    inputs = _annotated(inputs)
    return _moved(inputs, day, horizon, build, build(inputs, day, day + timedelta(days=1)))


def _moved(inputs: FeatureInputs, day: date, horizon: str, build: Build, reference: pl.DataFrame) -> list[str]:
    end = day + timedelta(days=1)
    changed: set[str] = set()
    for at in prediction_times(reference, horizon):
        garbled, _ = av.garble_after(inputs, at)
        altered = build(garbled, day, end)
        keep = pl.col("as_of") <= pl.lit(at).cast(av.UTC)
        ref, alt = reference.filter(keep).sort("flight_id"), altered.filter(keep)
        if sorted(alt["flight_id"].to_list()) != ref["flight_id"].to_list():
            changed.add("flight_id")  # rows appeared, vanished or were duplicated; values still compared
            alt = ref.select("flight_id").join(
                alt.unique("flight_id", keep="first", maintain_order=True), on="flight_id", how="left"
            )
        alt = alt.sort("flight_id")
        for col in ref.columns:
            if col not in KEY_COLUMNS and not ref[col].equals(alt[col], null_equal=True):
                changed.add(col)
    return sorted(changed)


def assert_point_in_time(
    inputs: FeatureInputs, day: date, horizon: str = DAY_AHEAD, extra: Mapping[str, pl.Expr] | None = None
) -> pl.DataFrame:
    """Refuse ``day``'s features of ``horizon`` if one reads the future; else return them (built
    from ``inputs`` alone, as a one-day build would store them)."""
    bad = undeclared_rules(FEATURES_BY_HORIZON[horizon])
    if bad:
        raise LeakageError(f"feature(s) without an availability rule: {', '.join(bad)}")
    inputs, build = _annotated(inputs), _builder(horizon, extra)
    features = build(inputs, day, day + timedelta(days=1))
    moved = _moved(inputs, day, horizon, build, features)
    if moved:
        raise LeakageError(
            f"{horizon} feature(s) {', '.join(moved)} of {day} move when rows not yet known at the "
            "prediction time are rewritten: they read the future"
        )
    return features
