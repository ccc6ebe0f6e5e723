"""Drift that detects: each month against the weeks just before it, with thresholds calibrated on
the training period's own month-to-month variation.

Why not the pooled training sample: on the embedded 2013 year, 38-49 % of features counted as
drifted in *every* training month against the 5,000 pooled training rows (January 0.44), because
weather and late-rate histories always differ from a whole-season pool. The alarm (0.5) then told
0.49 from 0.56: noise. Here:

- **Reference**: the ``REFERENCE_DAYS`` (42) days of features before the judged period, scored by
  the same model (so a p_late move is the model reacting to inputs, not a model change). With
  fewer than ``MIN_REFERENCE_DAYS`` (14) days of history the period is *not judged* (the first
  month of data).
- **Statistic**: population stability index (PSI) per column on ``BINS`` (10) reference-decile
  bins plus a null bin (a column going missing is drift too); categoricals on their 20 most
  frequent reference values plus "other" and null. Computed with numpy ``bincount`` for every day
  of a month at once (no per-day Evidently runs).
- **Seasonal columns** (weather, late-rate histories) are judged like the rest, against the
  trailing window, and their thresholds come from how far they moved month to month in training
  (temperature moves a lot in spring, so its threshold is high; distance barely moves, so a small
  shift fires). **Calendar columns** (weekday, holiday flags) are excluded from the share: they are
  a function of the date, so a month always differs from the six weeks before it by construction
  and that says nothing about the world.
- **Calibration** (``drift_profile``): slide a 28-day window over the training period in 7-day
  steps, each against its own 42 trailing days; a column's monthly threshold is
  ``MARGIN`` (1.5) x the largest PSI it showed (at least ``FLOOR``), i.e. "moved further than in
  any training month, by half again". The daily threshold is the same rule on single days.
  The profile is stored with the model (registry record ``monitoring.drift_profile``).
- **Held-out thresholds for the training months** (leave one month out). A threshold fitted on
  windows that contain a month cannot judge that month: it is at least 1.5 x the month's own
  move, so every training month is quiet by construction and an unusual one never shows. So each
  calendar month of the training period gets its own thresholds (``held_out``), the same rule
  fitted only on the windows that never saw it (neither their current 28 days nor their 42-day
  reference touch the month). A month after training is judged by the thresholds fitted on every
  training window, which never saw it either. Every monthly verdict is therefore out of sample
  for its thresholds, and how many training months alarm on held-out thresholds is the rate at
  which the published thresholds fire on an ordinary month (MARGIN's calibration, visible in the
  reports). A training month with fewer than ``MIN_HELD_OUT_WINDOWS`` windows that did not see
  it (a short training period) falls back to the full thresholds, and its verdict says so
  (``threshold_fit`` = ``saw_month``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from resources.ml.features.catalog import FEATURES

BINS = 10
TOP_CATEGORIES = 20
REFERENCE_DAYS = 42
MIN_REFERENCE_DAYS = 14
CALIBRATION_WINDOW_DAYS = 28
CALIBRATION_STEP_DAYS = 7
MIN_CALIBRATION_WINDOW_DAYS = 14
MARGIN = 1.5
# PSI below 0.1 is "no meaningful shift" by the usual credit-scoring rule of thumb; a column that
# never moved in training still needs that much before it counts. Single days are noisier
# (~900 flights, PSI sampling noise ~ bins / n ~ 0.01-0.1 for 100-value categoricals).
FLOOR = 0.1
DAY_FLOOR = 0.25
EPS = 1e-4  # empty bins: PSI has log(q / p); 1e-4 caps one empty bin's term near 0.001 * ln 1000
# Fewer windows than a month's worth (four weekly windows) make a maximum too low to judge by.
MIN_HELD_OUT_WINDOWS = 4
PROFILE_VERSION = 2  # 2: held-out thresholds per training month
# How a verdict's thresholds relate to the month it judges (``threshold_fit``).
HELD_OUT, AFTER_TRAINING, SAW_MONTH = "held_out", "after_training", "saw_month"
PREDICTION = "p_late"

EXCLUDED_REASON = (
    "calendar: a function of the date, so every month differs from the weeks before it "
    "by construction (a holiday month, five Fridays); not evidence of change"
)
JUDGED = tuple(f.name for f in FEATURES if f.known != "calendar")
EXCLUDED = {f.name: EXCLUDED_REASON for f in FEATURES if f.known == "calendar"}
SEASONAL = tuple(f.name for f in FEATURES if f.known in ("weather", "history"))


# --- binning and PSI ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Binning:
    """How one column is cut into bins, fitted on a reference sample. The last two bins are
    "other" (values the reference did not have among its top values) and null."""

    column: str
    edges: tuple[float, ...] = ()  # quantile bins: searchsorted(edges, x, "right")
    values: tuple = ()  # value bins: a bin per value

    @property
    def n_bins(self) -> int:
        return (len(self.values) if self.values else len(self.edges) + 1) + 2

    def codes(self, series: pl.Series) -> np.ndarray:
        other, null = self.n_bins - 2, self.n_bins - 1
        if self.values:
            mapping = {v: i for i, v in enumerate(self.values)}
            coded = series.cast(pl.String).replace_strict(
                {str(k): v for k, v in mapping.items()}, default=other, return_dtype=pl.Int64
            )
            return coded.fill_null(null).to_numpy().astype(np.int64)
        x = series.cast(pl.Float64).to_numpy()
        missing = np.isnan(x)
        out = np.searchsorted(np.asarray(self.edges), np.where(missing, 0.0, x), side="right").astype(np.int64)
        out[missing] = null
        return out


def fit_binning(series: pl.Series) -> Binning:
    present = series.drop_nulls()
    if series.dtype.is_numeric():
        present = present.cast(pl.Float64).drop_nans()
    if not series.dtype.is_numeric() or present.n_unique() <= TOP_CATEGORIES:
        counts = present.cast(pl.String).value_counts(sort=True).head(TOP_CATEGORIES)
        return Binning(series.name, values=tuple(counts[counts.columns[0]].to_list()) or ("",))
    quantiles = np.quantile(present.to_numpy(), np.linspace(0, 1, BINS + 1)[1:-1])
    return Binning(series.name, edges=tuple(float(q) for q in np.unique(quantiles)))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.maximum(counts / total, EPS)


def psi_by_group(
    binning: Binning, reference: pl.Series, current: pl.Series, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, float]:
    """PSI of every group of ``current`` (e.g. each day) and of all of it, against ``reference``,
    in one pass: ``bincount`` over (group, bin)."""
    nb = binning.n_bins
    p = _shares(np.bincount(binning.codes(reference), minlength=nb).astype(float))
    codes = binning.codes(current)
    counts = np.bincount(groups * nb + codes, minlength=n_groups * nb).reshape(n_groups, nb).astype(float)
    q = _shares(counts)
    by_group = ((q - p) * np.log(q / p)).sum(axis=1)
    by_group[counts.sum(axis=1) == 0] = np.nan
    q_all = _shares(counts.sum(axis=0))
    return by_group, float(((q_all - p) * np.log(q_all / p)).sum())


def psi(reference: pl.Series, current: pl.Series) -> float:
    """One PSI, with this module's binning (also registered as Evidently's "psi_trailing")."""
    return psi_by_group(fit_binning(reference), reference, current, np.zeros(current.len(), dtype=np.int64), 1)[1]


@dataclass
class WindowDrift:
    period: dict[str, float]  # column -> PSI of the whole current window
    days: list[date]
    daily: dict[str, np.ndarray]  # column -> PSI per day (aligned with ``days``)


def window_drift(
    reference: pl.DataFrame, current: pl.DataFrame, columns: list[str], by: str = "flight_date"
) -> WindowDrift:
    """PSI of every column, for the whole current window and for each of its days."""
    days = sorted(set(current[by].to_list()))
    index = {d: i for i, d in enumerate(days)}
    groups = np.array([index[d] for d in current[by].to_list()], dtype=np.int64)
    period, daily = {}, {}
    for column in columns:
        if column not in reference.columns or column not in current.columns:
            raise KeyError(
                f"drift: column {column!r} missing from the "
                f"{'reference' if column not in reference.columns else 'current'} frame"
            )
        if reference[column].null_count() == reference.height:
            continue  # nothing to compare against (a calm stretch without any gust reading)
        binning = fit_binning(reference[column])
        daily[column], period[column] = psi_by_group(binning, reference[column], current[column], groups, len(days))
    return WindowDrift(period, days, daily)


# --- calibration -------------------------------------------------------------------------------
def calibration_windows(first: date, end: date) -> list[tuple[date, date, date]]:
    """(reference_start, current_start, current_end) over [first, end): 28-day windows every
    7 days, each against up to 42 trailing days (at least 14)."""
    out, start = [], first + timedelta(days=MIN_REFERENCE_DAYS)
    while start + timedelta(days=MIN_CALIBRATION_WINDOW_DAYS) <= end:
        out.append(
            (
                max(first, start - timedelta(days=REFERENCE_DAYS)),
                start,
                min(end, start + timedelta(days=CALIBRATION_WINDOW_DAYS)),
            )
        )
        start += timedelta(days=CALIBRATION_STEP_DAYS)
    return out


def _month_starts(first: date, last: date) -> list[date]:
    """The first day of every calendar month that [first, last] touches."""
    out, m = [], first.replace(day=1)
    while m <= last:
        out.append(m)
        m = _next_month(m)
    return out


def _next_month(m: date) -> date:
    return date(m.year + (m.month == 12), m.month % 12 + 1, 1)


def _thresholds(month_psi: list[float], day_psi: list[float]) -> dict:
    return {
        "month_threshold": round(max(FLOOR, MARGIN * max(month_psi)) if month_psi else FLOOR, 4),
        "day_threshold": round(max(DAY_FLOOR, MARGIN * float(np.quantile(day_psi, 0.99))) if day_psi else DAY_FLOOR, 4),
    }


def drift_profile(
    train_features: pl.DataFrame, columns: list[str] | None = None, date_column: str = "flight_date"
) -> dict:
    """Per-column PSI thresholds (month and day) from the training period's own variation, plus
    each training month's held-out thresholds (fitted on the windows that never saw it).

    ``train_features``: the model's training window of ``ml/features`` (with ``p_late`` if the
    prediction is to be calibrated too). Pure: no I/O. JSON-serialisable result."""
    if train_features.height == 0:
        raise ValueError("drift_profile: the training window has no feature rows")
    if columns is None:
        columns = [c for c in (*JUDGED, PREDICTION) if c in train_features.columns]
    first, last = train_features[date_column].min(), train_features[date_column].max()
    windows = calibration_windows(first, last + timedelta(days=1))
    # One entry per window: its span (reference start .. current end) and each column's PSIs.
    fitted: list[tuple[date, date, dict[str, float], dict[str, list[float]]]] = []
    frame = train_features.select(date_column, *columns)
    for ref_start, cur_start, cur_end in windows:
        reference = frame.filter(pl.col(date_column).is_between(ref_start, cur_start, closed="left"))
        current = frame.filter(pl.col(date_column).is_between(cur_start, cur_end, closed="left"))
        drift = window_drift(reference, current, columns, by=date_column)
        fitted.append(
            (
                ref_start,
                cur_end,
                drift.period,
                {c: [float(x) for x in drift.daily[c] if np.isfinite(x)] for c in drift.period},
            )
        )

    def fit(c: str, use: list) -> dict:
        return _thresholds([w[2][c] for w in use if c in w[2]], [x for w in use for x in w[3].get(c, [])])

    def entry(c: str) -> dict:
        m = [w[2][c] for w in fitted if c in w[2]]
        return {
            **fit(c, fitted),
            "month_max": round(max(m), 4) if m else None,
            "month_median": round(float(np.median(m)), 4) if m else None,
            "seasonal": c in SEASONAL,
        }

    held_out = {}
    for month_start in _month_starts(first, last):
        month_end = _next_month(month_start)
        unseen = [w for w in fitted if w[1] <= month_start or w[0] >= month_end]  # [ref_start, cur_end) misses it
        held_out[f"{month_start:%Y-%m}"] = {
            "windows": len(unseen),
            "columns": {c: fit(c, unseen) for c in columns} if len(unseen) >= MIN_HELD_OUT_WINDOWS else {},
        }

    return {
        "version": PROFILE_VERSION,
        "method": "psi_trailing",
        "bins": BINS,
        "reference_days": REFERENCE_DAYS,
        "min_reference_days": MIN_REFERENCE_DAYS,
        "margin": MARGIN,
        "floor": FLOOR,
        "day_floor": DAY_FLOOR,
        "calibrated_on": [str(first), str(last)],
        "windows": len(windows),
        "min_held_out_windows": MIN_HELD_OUT_WINDOWS,
        "columns": {c: entry(c) for c in columns},
        "held_out": held_out,
        "excluded": {c: r for c, r in EXCLUDED.items() if c not in columns},
    }


def merge_profiles(base: dict, extra: dict) -> dict:
    """``base`` with ``extra``'s columns (e.g. p_late's, calibrated on the same days) added, in
    the full thresholds and in each held-out month's."""
    held_out = {}
    for month in sorted({*base.get("held_out", {}), *extra.get("held_out", {})}):
        a, b = base.get("held_out", {}).get(month), extra.get("held_out", {}).get(month)
        held_out[month] = {
            "windows": min(x["windows"] for x in (a, b) if x),
            "columns": {**(a or {}).get("columns", {}), **(b or {}).get("columns", {})},
        }
    return {**base, "columns": {**base["columns"], **extra["columns"]}, "held_out": held_out}


def profile_for_month(profile: dict, month: str) -> tuple[dict, str]:
    """The thresholds to judge ``month`` (YYYY-MM) by, and how they relate to it: a training
    month gets its held-out thresholds (``held_out``), or the full ones when too few windows missed
    it (``saw_month``); a month outside the training period gets the full ones
    (``after_training``: no training window saw it)."""
    held_out = profile.get("held_out", {})
    if month not in held_out:
        return profile, AFTER_TRAINING
    own = held_out[month]["columns"]
    if not own:
        return profile, SAW_MONTH
    columns = {c: {**entry, **own.get(c, {})} for c, entry in profile["columns"].items()}
    return {**profile, "columns": columns}, HELD_OUT


FIT_LABELS = {
    HELD_OUT: "thresholds fitted without this training month (held out)",
    AFTER_TRAINING: "thresholds fitted on the training period, which ends before this month",
    SAW_MONTH: "training month judged by thresholds fitted on windows that include it "
    f"(fewer than {MIN_HELD_OUT_WINDOWS} windows missed it): quiet by construction",
}


# --- judging a period --------------------------------------------------------------------------
def reference_window(period_start: date) -> tuple[date, date]:
    return period_start - timedelta(days=REFERENCE_DAYS), period_start


@dataclass
class DriftVerdict:
    psi: dict[str, float]
    thresholds: dict[str, float]
    drifted: list[str]  # features over their threshold, largest excess first (p_late not included)
    prediction_psi: float | None
    prediction_drifted: bool
    share: float  # of the judged columns (features and p_late) past their threshold, as Evidently counts it
    columns: int
    alarm: bool
    reason: str
    daily: pl.DataFrame


def judge(
    reference: pl.DataFrame, current: pl.DataFrame, profile: dict, share_warn: float, by: str = "flight_date"
) -> DriftVerdict:
    """Compare ``current`` (a month, with p_late) to its trailing ``reference`` using the
    profile's thresholds. Alarm: p_late moved further than in training, or any judged feature did
    (each threshold already means "beyond the largest training month, by half again"), or the
    drifted share passes the record's ``drift_share_warn``."""
    if current.height == 0 or reference.height == 0:
        raise ValueError(f"drift: the {'current period' if current.height == 0 else 'reference window'} has no rows")
    columns = [c for c in profile["columns"] if c in current.columns]
    drift = window_drift(reference, current, columns, by=by)
    month_t = {c: profile["columns"][c]["month_threshold"] for c in drift.period}
    day_t = {c: profile["columns"][c]["day_threshold"] for c in drift.period}
    features = [c for c in drift.period if c != PREDICTION]
    drifted = sorted(
        (c for c in features if drift.period[c] > month_t[c]), key=lambda c: drift.period[c] / month_t[c], reverse=True
    )
    pred_psi = drift.period.get(PREDICTION)
    pred_drifted = pred_psi is not None and pred_psi > month_t[PREDICTION]
    judged = len(features) + (pred_psi is not None)
    share = (len(drifted) + pred_drifted) / judged if judged else 0.0
    reasons = []
    if pred_drifted:
        reasons.append(f"p_late PSI {pred_psi:.3f} > {month_t[PREDICTION]:.3f}")
    if drifted:
        reasons.append(
            "features beyond their training range: "
            + ", ".join(f"{c} PSI {drift.period[c]:.3f} > {month_t[c]:.3f}" for c in drifted[:6])
        )
    if share > share_warn:
        reasons.append(f"drift share {share:.2f} > {share_warn}")
    n = len(drift.days)
    over = np.zeros(n, dtype=np.int64)
    for c in features:
        over += np.nan_to_num(drift.daily[c] > day_t[c]).astype(np.int64)
    daily = pl.DataFrame(
        {
            by: drift.days,
            "drift_share": (over / max(len(features), 1)).astype(float),
            "drifted_features": over,
            "prediction_drift": drift.daily.get(PREDICTION, np.full(n, np.nan)).astype(float),
            "prediction_drifted": (drift.daily[PREDICTION] > day_t[PREDICTION])
            if PREDICTION in drift.daily
            else np.zeros(n, dtype=bool),
        },
        schema_overrides={by: pl.Date},
    ).with_columns(pl.col("prediction_drift").fill_nan(None))
    return DriftVerdict(
        drift.period,
        month_t,
        drifted,
        pred_psi,
        pred_drifted,
        share,
        len(features),
        bool(reasons),
        "; ".join(reasons),
        daily,
    )
