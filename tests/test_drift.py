"""Drift statistic and calibration on synthetic days (no lakehouse): PSI per day equals PSI of
that day alone, calibration tolerates a seasonal trend, a planted shift fires and is named, and
calendar features are excluded. ROC AUC per day matches scikit-learn."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from resources.ml.features.catalog import FEATURES
from resources.monitoring.auc import daily_auc
from resources.monitoring.drift import (
    AFTER_TRAINING,
    EXCLUDED,
    FLOOR,
    HELD_OUT,
    SAW_MONTH,
    drift_profile,
    fit_binning,
    judge,
    merge_profiles,
    profile_for_month,
    psi,
    psi_by_group,
    reference_window,
    window_drift,
)

pytestmark = pytest.mark.fast  # `make test-fast`: no Dagster run, no dbt build

# The model's temperature and gust features, whatever their prefix (the weather features are wx_*).
TEMP = next(f.name for f in FEATURES if f.name.endswith("temp_f"))
GUST = next(f.name for f in FEATURES if f.name.endswith("wind_gust_mph"))


def synthetic(start: date, days: int, seed: int = 0, per_day: int = 400) -> pl.DataFrame:
    """Stable schedule columns, a temperature that warms 0.3 F a day (a season), a categorical,
    a column with nulls, a calendar column, and p_late."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    day_index = np.repeat(np.arange(days), per_day)
    return pl.DataFrame(
        {
            "flight_date": [start + timedelta(days=int(i)) for i in day_index],
            "distance_mi": rng.gamma(4, 250, n),
            TEMP: 30 + 0.3 * day_index + rng.normal(0, 6, n),
            "carrier": rng.choice(["UA", "B6", "EV", "DL", "AA", "MQ"], n, p=[0.25, 0.2, 0.2, 0.15, 0.1, 0.1]),
            GUST: pl.Series(np.where(rng.random(n) < 0.8, np.nan, rng.normal(25, 5, n))).fill_nan(None),
            "is_holiday": (day_index % 30 == 0).astype(float),
            "p_late": rng.beta(2, 6, n),
        },
        strict=False,
    )


def test_psi_per_day_in_one_pass_equals_psi_of_each_day_alone():
    frame = synthetic(date(2013, 3, 1), 5)
    reference, current = (
        frame.filter(pl.col("flight_date") < date(2013, 3, 4)),
        frame.filter(pl.col("flight_date") >= date(2013, 3, 4)),
    )
    for column in ("distance_mi", "carrier", GUST):
        drift = window_drift(reference, current, [column])
        for i, day in enumerate(drift.days):
            alone = psi_by_group(
                fit_binning(reference[column]),
                reference[column],
                current.filter(pl.col("flight_date") == day)[column],
                np.zeros(400, dtype=np.int64),
                1,
            )[1]
            assert drift.daily[column][i] == pytest.approx(alone)
        assert drift.period[column] == pytest.approx(psi(reference[column], current[column]))


def test_psi_sees_a_column_going_missing_and_unseen_categories():
    reference = pl.Series("x", np.random.default_rng(1).normal(size=5_000))
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-9)
    half_missing = pl.Series("x", [None] * 2_500 + reference.to_list()[:2_500], dtype=pl.Float64)
    assert psi(reference, half_missing) > 1.0
    carriers = pl.Series("c", ["UA", "B6"] * 1_000)
    assert psi(carriers, pl.Series("c", ["UA", "B6", "ZZ", "ZZ"] * 500)) > 0.5


def test_calibration_tolerates_the_season_and_a_planted_shift_fires_named():
    train = synthetic(date(2013, 1, 1), 120)
    profile = drift_profile(train)
    assert profile["windows"] >= 10
    assert set(EXCLUDED) & set(profile["columns"]) == set()  # calendar features are never judged
    assert "is_holiday" in profile["excluded"]
    assert profile["columns"][TEMP]["seasonal"] and profile["columns"][TEMP]["month_threshold"] > FLOOR
    assert profile["columns"]["distance_mi"]["month_threshold"] == FLOOR  # never moved in training

    later = synthetic(date(2013, 1, 1), 212, seed=7)  # the same season, continued to July 31
    reference = later.filter(pl.col("flight_date").is_between(date(2013, 5, 20), date(2013, 7, 1), closed="left"))
    month = later.filter(pl.col("flight_date") >= date(2013, 7, 1))
    assert month["flight_date"].n_unique() == 31
    quiet = judge(reference, month, profile, share_warn=0.5)
    assert not quiet.alarm and quiet.drifted == [] and quiet.share == 0.0, quiet.reason

    shifted = month.with_columns(pl.col("distance_mi") * 1.5, (pl.col("p_late") + 0.15).clip(0, 1))
    loud = judge(reference, shifted, profile, share_warn=0.5)
    assert loud.alarm and loud.drifted == ["distance_mi"] and loud.prediction_drifted
    assert "distance_mi" in loud.reason and "p_late" in loud.reason
    daily = loud.daily
    assert daily.height == month["flight_date"].n_unique()
    assert daily["prediction_drifted"].all() and (daily["drifted_features"] >= 1).all()


def test_an_unusual_training_month_alarms_on_thresholds_fitted_without_it():
    """February's distances are 1.5x longer in the training data. Thresholds fitted on every
    training window include February's own move and keep it quiet; February's held-out thresholds
    (windows that never saw February) name distance_mi. An ordinary training month (May) stays
    quiet on its held-out thresholds, and a month after training gets the full ones."""
    train = synthetic(date(2013, 1, 1), 181)  # Jan 1 .. Jun 30
    in_feb = pl.col("flight_date").is_between(date(2013, 2, 1), date(2013, 3, 1), closed="left")
    train = train.with_columns(
        pl.when(in_feb).then(pl.col("distance_mi") * 1.5).otherwise(pl.col("distance_mi")).alias("distance_mi")
    )
    features = drift_profile(train.drop("p_late"))
    profile = merge_profiles(features, drift_profile(train, columns=["p_late"]))
    assert set(profile["held_out"]) == {f"2013-{m:02d}" for m in range(1, 7)}
    feb_profile, fit = profile_for_month(profile, "2013-02")
    assert fit == HELD_OUT and profile["held_out"]["2013-02"]["windows"] >= 4
    assert "p_late" in profile["held_out"]["2013-02"]["columns"]  # merged into each month too
    assert (
        feb_profile["columns"]["distance_mi"]["month_threshold"]
        == FLOOR
        < profile["columns"]["distance_mi"]["month_threshold"]
    )

    def month(start: date, end: date):
        ref_start, ref_end = reference_window(start)
        return (
            train.filter(pl.col("flight_date").is_between(ref_start, ref_end, closed="left")),
            train.filter(pl.col("flight_date").is_between(start, end, closed="left")),
        )

    reference, feb = month(date(2013, 2, 1), date(2013, 3, 1))
    assert not judge(reference, feb, profile, share_warn=0.5).alarm  # the threshold saw February
    loud = judge(reference, feb, feb_profile, share_warn=0.5)
    assert loud.alarm and loud.drifted == ["distance_mi"], loud.reason
    may_profile, fit = profile_for_month(profile, "2013-05")
    assert fit == HELD_OUT
    quiet = judge(*month(date(2013, 5, 1), date(2013, 6, 1)), may_profile, share_warn=0.5)
    assert not quiet.alarm, quiet.reason
    assert profile_for_month(profile, "2013-07") == (profile, AFTER_TRAINING)


def test_too_short_a_training_window_falls_back_to_the_floor():
    profile = drift_profile(synthetic(date(2013, 1, 1), 10))
    assert profile["windows"] == 0
    assert all(c["month_threshold"] == FLOOR for c in profile["columns"].values())
    # no window missed January: it is judged by the full thresholds, and says so
    assert profile_for_month(profile, "2013-01") == (profile, SAW_MONTH)
    with pytest.raises(ValueError, match="no rows"):
        judge(synthetic(date(2013, 1, 1), 20), synthetic(date(2013, 1, 1), 1).clear(), profile, 0.5)
    with pytest.raises(ValueError, match="no feature rows"):
        drift_profile(synthetic(date(2013, 1, 1), 1).clear())


def test_daily_roc_auc_matches_scikit_learn_and_is_null_for_one_class_days():
    rng = np.random.default_rng(3)
    frame = pl.DataFrame(
        {
            "flight_date": [date(2013, 1, 1 + i // 300) for i in range(900)],
            "p_late": np.round(rng.random(900), 2),  # ties, like real scores
            "is_late": (rng.random(900) < 0.3).astype(np.int8),
        }
    )
    frame = frame.with_columns(
        pl.when(pl.col("flight_date") == date(2013, 1, 3))
        .then(0)
        .otherwise(pl.col("is_late"))
        .cast(pl.Int8)
        .alias("is_late")
    )
    out = daily_auc(frame)
    for day, got in zip(out["flight_date"], out["roc_auc"]):
        part = frame.filter(pl.col("flight_date") == day)
        expected = roc_auc_score(part["is_late"], part["p_late"]) if part["is_late"].n_unique() == 2 else None
        assert got == (pytest.approx(expected) if expected is not None else None)


def test_the_evidently_report_says_what_the_alarm_says():
    """Finding: a red ALARM banner sat above Evidently's "Dataset Drift is NOT detected", and the
    report's drifted share (0.143) differed from Dagster's and the index's (0.122). The report now
    shows the verdict's own PSI per column and declares drift when one column passes its threshold."""
    import re

    from resources.monitoring.evidently_reports import drift_report

    profile = drift_profile(synthetic(date(2013, 1, 1), 120))
    later = synthetic(date(2013, 1, 1), 212, seed=7)
    reference = later.filter(pl.col("flight_date").is_between(date(2013, 5, 20), date(2013, 7, 1), closed="left"))
    month = later.filter(pl.col("flight_date") >= date(2013, 7, 1))
    seen = []
    for current in (month, month.with_columns((pl.col("p_late") + 0.15).clip(0, 1))):  # quiet; p_late alone
        verdict = judge(reference, current, profile, share_warn=0.5)
        snapshot = drift_report(reference, current, verdict.thresholds, verdict.psi, date(2013, 7, 1), ["t"], {})
        metrics = snapshot.dict()["metrics"]
        counted = next(m["value"] for m in metrics if m["metric_name"].startswith("DriftedColumnsCount"))
        assert counted["share"] == pytest.approx(verdict.share) and (counted["count"] > 0) == verdict.alarm
        (said,) = set(re.findall(r"Dataset Drift is (?:NOT )?detected", snapshot.get_html_str(as_iframe=False)))
        assert said == ("Dataset Drift is detected" if verdict.alarm else "Dataset Drift is NOT detected")
        seen.append(verdict.alarm)
    assert seen == [False, True]
