"""Quality alarm: a month's out-of-sample ROC AUC or calibration error outside the range the
walk-forward backtest showed.

The drift alarm says the inputs moved; it does not say the model got worse (on the embedded year
October, the worst backtest month, drifted less than its thresholds). This alarm looks at quality
itself, on labelled out-of-sample days only:

- **The month's figures**: ROC AUC and calibration error (expected calibration error, training's
  own definition: 10 probability bins, mean |observed rate - mean p_late| weighted by flights) of
  the production model on the month's out-of-sample days when it has at least
  ``MIN_OUT_OF_SAMPLE_FLIGHTS`` of them; otherwise (a month the model was trained or selected on)
  of the walk-forward backtest's scores of the month, which are out of sample by construction and
  are what a model in production at that time would have scored. In-sample scores never count.
- **The range**: the last ``RANGE_MONTHS`` walk-forward months *before* the judged month
  (``ml/backtest/month=*.parquet``, the figures the backtest wrote), so a month never sets its own
  range and a verdict does not change when later months arrive. Only the recent months count: the
  first backtest months are trained on a month or two of data (February 0.615 on the year, trained
  on January alone) and would set a floor no current model is held to. A backtest month that itself left the range of the months before
  it is left out of the range (and listed as ``excluded``): a bad month must not widen the range
  that judges the next ones. Fewer than ``MIN_RANGE_MONTHS`` months make no range: the month is
  not judged.
- **Margins** (``MARGINS``). ROC AUC: none, the range's minimum is used as it is. Month-to-month
  variation (backtest ROC AUC sd ~0.03 on the year) is several times a full month's sampling
  noise (standard error ~0.004 at ~28k flights), so the worst of several months is already a
  tolerant bound. Calibration error: 0.01 above the maximum. Expected calibration error sums
  absolute deviations, so sampling noise only ever raises it: over 10 bins of ~2,800 flights
  each bin's observed late rate is +-0.008, and two equally calibrated months differ by up to
  ~0.01 by chance.
- **The alarm** is one-sided, in the direction of worse quality: ROC AUC below the range's
  minimum, or calibration error above its maximum. A month better than every earlier month is
  not a quality problem. The reason names each metric that left its range, with the range and
  the months it came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from resources.core.settings import Settings
from resources.ml import lake

MIN_RANGE_MONTHS = 2  # two months give a min and a max; one is a point
RANGE_MONTHS = 6  # the trailing months a range is made of: half a year of seasons
METRICS = ("roc_auc", "calibration_error")
MARGINS = {"roc_auc": 0.0, "calibration_error": 0.01}
# Which way is worse: below the range for ROC AUC, above it for calibration error.
WORSE = {"roc_auc": "below", "calibration_error": "above"}
LABELS = {"roc_auc": "ROC AUC", "calibration_error": "calibration error"}
JUDGED, NOT_JUDGED = "judged", "not_judged"


def calibration_error(y: np.ndarray, p: np.ndarray) -> float | None:
    """Expected calibration error as training computes it (resources/ml/model/training.py)."""
    from resources.ml.model.training import calibration_table

    if len(y) == 0:
        return None
    return float(sum(r["n"] * abs(r["observed_rate"] - r["mean_predicted"]) for r in calibration_table(y, p)) / len(y))


def read_backtest_metrics(settings: Settings) -> pl.DataFrame:
    """The walk-forward backtest's per-month figures (month, ROC AUC, calibration error, flights,
    model version), month order; empty when the backtest has not run."""
    frame = lake.read_backtest_metrics(settings)
    schema = {
        "month": pl.String,
        "roc_auc": pl.Float64,
        "calibration_error": pl.Float64,
        "flights": pl.Int64,
        "model_version": pl.String,
    }
    return frame.select(
        [pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c) for c, t in schema.items()]
    ).sort("month")


@dataclass(frozen=True)
class QualityRange:
    """The range a month is judged against, kept with its verdict."""

    months: tuple[str, ...]  # the backtest months it is taken from
    excluded: tuple[str, ...]  # earlier backtest months left out: they left their own range
    roc_auc: tuple[float, float]  # min, max
    calibration_error: tuple[float, float]
    source: str = "walk-forward backtest (ml/backtest), months before the judged month"

    def as_dict(self) -> dict:
        out = asdict(self)
        return {
            **out,
            "months": list(self.months),
            "excluded": list(self.excluded),
            "margins": dict(MARGINS),
            "roc_auc": [round(v, 4) for v in self.roc_auc],
            "calibration_error": [round(v, 4) for v in self.calibration_error],
        }


def _range(rows: list[dict], excluded: list[str]) -> QualityRange:
    return QualityRange(
        months=tuple(r["month"] for r in rows),
        excluded=tuple(excluded),
        roc_auc=(min(r["roc_auc"] for r in rows), max(r["roc_auc"] for r in rows)),
        calibration_error=(min(r["calibration_error"] for r in rows), max(r["calibration_error"] for r in rows)),
    )


def left_range(figures: dict[str, float | None], rng: QualityRange) -> list[str]:
    """The reasons, one per metric of ``figures`` that is worse than ``rng`` allows."""
    out = []
    for metric in METRICS:
        value = figures.get(metric)
        if value is None:
            continue
        low, high = getattr(rng, metric)
        margin = MARGINS[metric]
        if (WORSE[metric] == "below" and value < low - margin) or (WORSE[metric] == "above" and value > high + margin):
            bound = f" (margin {margin:.3f})" if margin else ""
            out.append(
                f"{LABELS[metric]} {value:.3f} {WORSE[metric]} the backtest range {low:.3f}..{high:.3f}{bound} "
                f"of {', '.join(rng.months)}"
            )
    return out


def quality_range(backtest: pl.DataFrame, month: str) -> QualityRange | None:
    """The range for ``month`` (YYYY-MM) from the last RANGE_MONTHS backtest months before it,
    leaving out those that left the range of their own predecessors; None with fewer than
    MIN_RANGE_MONTHS."""
    normal: list[dict] = []
    excluded: list[str] = []
    for row in backtest.filter(pl.col("month") < month).sort("month").iter_rows(named=True):
        if row["roc_auc"] is None or row["calibration_error"] is None:
            continue  # a month with one class has no ROC AUC: nothing to range over
        if len(normal) >= MIN_RANGE_MONTHS and left_range(row, _range(normal[-RANGE_MONTHS:], excluded)):
            excluded.append(row["month"])
        else:
            normal.append(row)
    return _range(normal[-RANGE_MONTHS:], excluded) if len(normal) >= MIN_RANGE_MONTHS else None


@dataclass(frozen=True)
class QualityVerdict:
    status: str  # judged / not_judged
    alarm: bool
    reason: str
    source: str  # whose scores the figures are from
    figures: dict
    range: dict | None

    def as_summary(self) -> dict:
        return {
            "quality_status": self.status,
            "quality_alarm": self.alarm,
            "quality_reason": self.reason,
            "quality_source": self.source,
            "quality_figures": self.figures,
            "quality_range": self.range,
        }


def judge_quality(
    month: str, figures: dict[str, float | None] | None, source: str, backtest: pl.DataFrame
) -> QualityVerdict:
    """``figures``: the month's out-of-sample ROC AUC and calibration error (None: no
    out-of-sample figures for the month); ``source`` says whose scores they are."""
    if figures is None or figures.get("roc_auc") is None:
        return QualityVerdict(NOT_JUDGED, False, f"no out-of-sample figures: {source}", source, figures or {}, None)
    figures = {m: None if figures.get(m) is None else round(float(figures[m]), 4) for m in METRICS}
    rng = quality_range(backtest, month)
    if rng is None:
        earlier = backtest.filter(pl.col("month") < month).height
        return QualityVerdict(
            NOT_JUDGED,
            False,
            f"no backtest range: {earlier} walk-forward month(s) before {month}, {MIN_RANGE_MONTHS} needed",
            source,
            figures,
            None,
        )
    reasons = left_range(figures, rng)
    reason = (
        "; ".join(reasons)
        if reasons
        else (
            f"ROC AUC {figures['roc_auc']:.3f} and calibration error "
            f"{'-' if figures['calibration_error'] is None else format(figures['calibration_error'], '.3f')} "
            f"within the backtest range"
        )
    )
    return QualityVerdict(JUDGED, bool(reasons), reason, source, figures, rng.as_dict())


def quality_alarm_breaches(entries: list[dict]) -> tuple[dict[str, dict], int, list[str]]:
    """Quality months whose alarm fired (reason, figures, range), how many were judged, and which
    were not."""
    quality = [e for e in entries if e["kind"] == "quality"]
    judged = [e for e in quality if e.get("quality_status") == JUDGED]
    bad = {
        e["period"]: {
            "model_version": e["model_version"],
            "source": e.get("quality_source"),
            "reason": e.get("quality_reason"),
            "figures": e.get("quality_figures"),
            "range": e.get("quality_range"),
        }
        for e in judged
        if e.get("quality_alarm")
    }
    return bad, len(judged), [e["period"] for e in quality if e.get("quality_status") != JUDGED]
