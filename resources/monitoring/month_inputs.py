"""What a month's monitoring reads: its scored flights, the 42 days of features before it scored
by the same model, and that model's drift thresholds."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta

import polars as pl

from resources.core.parquet_io import write_text_atomic
from resources.core.settings import Settings
from resources.ml.lake import feature_table, read_features
from resources.ml.model.scoring import read_scores
from resources.ml.model.training import predict
from resources.monitoring.drift import EXCLUDED as DRIFT_EXCLUDED
from resources.monitoring.drift import (
    MIN_REFERENCE_DAYS,
    PREDICTION,
    PROFILE_VERSION,
    drift_profile,
    merge_profiles,
    reference_window,
)
from resources.monitoring.paths import profiles_dir

Log = Callable[[str], None]


def scored_month(settings: Settings, start: date, end: date) -> tuple[pl.DataFrame, str] | None:
    """Features of the month's scored flights with p_late, from the version that scored most."""
    scores = read_scores(settings, start, end)
    if scores.height == 0:
        return None
    version = Counter(scores["model_version"].to_list()).most_common(1)[0][0]
    features = read_features(settings, start, end)
    if features.height == 0:
        raise ValueError(f"scores exist for {start}..{end} but no features in ml.{feature_table()}")
    current = features.join(
        scores.filter(pl.col("model_version") == version).select("flight_id", PREDICTION), on="flight_id", how="inner"
    )
    return current, version


def with_predictions(settings: Settings, registry, version: str, features: pl.DataFrame) -> pl.DataFrame:
    """``features`` plus the model's p_late: the stored scores of this version where they exist,
    the model itself for the rest (days scored by another version, or never scored)."""
    if features.height == 0:
        return features.with_columns(pl.lit(None, pl.Float64).alias(PREDICTION))
    start, end = features["flight_date"].min(), features["flight_date"].max() + timedelta(days=1)
    scores = read_scores(settings, start, end)
    stored = (
        scores.filter(pl.col("model_version") == version).select("flight_id", PREDICTION)
        if scores.height
        else pl.DataFrame(schema={"flight_id": pl.String, PREDICTION: pl.Float64})
    )
    out = features.join(stored, on="flight_id", how="left")
    missing = out[PREDICTION].is_null()
    if missing.any():
        predicted = predict(registry.load(version), out.filter(missing))
        values = out[PREDICTION].to_numpy().copy()
        values[missing.to_numpy()] = predicted
        out = out.with_columns(pl.Series(PREDICTION, values, dtype=pl.Float64))
    return out


def reference_for(settings: Settings, registry, version: str, start: date) -> pl.DataFrame | None:
    """The 42 days of features before ``start`` with this model's p_late; None with fewer than
    14 days of history (the first month of data is not judged)."""
    ref_start, ref_end = reference_window(start)
    features = read_features(settings, ref_start, ref_end)
    if features.height == 0 or features["flight_date"].n_unique() < MIN_REFERENCE_DAYS:
        return None
    return with_predictions(settings, registry, version, features)


def _model_drift_columns(record: dict, stored: dict | None, window: pl.DataFrame) -> list[str] | None:
    """The columns a recomputed profile judges: the model's own (those its stored profile judged,
    else its features minus calendar ones), not the current code's feature list, which may name
    features the model never had and miss some it has. None: the current code's default."""
    if stored and stored.get("columns"):
        columns = [c for c in stored["columns"] if c != PREDICTION]
    elif record.get("features"):
        columns = [c for c in record["features"] if c not in DRIFT_EXCLUDED]
    else:
        return None
    return [c for c in columns if c in window.columns]


def model_drift_profile(settings: Settings, registry, version: str, log: Log = print) -> dict:
    """The model's drift thresholds: the registry record's profile (features, computed at training)
    completed with p_late's, calibrated on the model's own predictions over its training window
    (the profile is computed before the model exists, so p_late is added here once per version and
    cached in monitoring/profiles/<version>.json)."""
    cache = profiles_dir(settings) / f"{version}.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("version") == PROFILE_VERSION:
            return cached
    record = registry.record(version)
    split = record.get("split") or {}
    if not split.get("train_start"):
        raise ValueError(f"model {version} has no training split in its registry record: cannot calibrate drift")
    train_start, train_end = (date.fromisoformat(split[k]) for k in ("train_start", "validation_start"))
    window = read_features(settings, train_start, train_end)
    if window.height == 0:
        raise ValueError(
            f"no features in ml.{feature_table()} for {version}'s training window "
            f"{train_start}..{train_end}: cannot calibrate drift"
        )
    profile = (record.get("monitoring") or {}).get("drift_profile")
    if not profile or profile.get("version") != PROFILE_VERSION:
        log(
            f"model {version} has no drift profile of version {PROFILE_VERSION} in its registry record "
            f"(trained before this version): computing it from ml/features {train_start}..{train_end}"
        )
        profile = drift_profile(window, columns=_model_drift_columns(record, profile, window))
    if PREDICTION not in profile["columns"]:
        scored = with_predictions(settings, registry, version, window)
        profile = merge_profiles(profile, drift_profile(scored, columns=[PREDICTION]))
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(cache, json.dumps(profile, indent=1, sort_keys=True, default=str))
    return profile
