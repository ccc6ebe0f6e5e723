"""Leakage audit over a labelled training window: availability, values and *missingness*.

The time guard in ``ml_features`` proves that no feature reads a row not yet known at its
prediction time. It cannot see a leak that arrives through an input the schedule seems to provide but
whose value, or whose absence, was decided after departure: in the 2013 deliveries every flight
without a tail number was cancelled, and a model that saw "no aircraft" learned "late" (p_late
0.994 for those 2,512 flights). This audit looks at the outcome side instead:

- every feature declares the availability rule it follows (``Feature.known``, a key of
  ``availability.RULES``); a feature without one fails;
- every column's single-feature ROC AUC (direction-free), and its null indicator's: no honest
  schedule-time signal predicts lateness alone with AUC >= 0.9 (the best real one here is ~0.62);
- a null group that is almost all one class (>= 98 % late or on time, at least 30 rows) is a
  missingness leak even when it is too small to move the AUC (2,512 rows of 336,776 moved the
  null indicator's AUC only to ~0.51, yet decided p_late for all of them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from resources.ml.features.availability import RULES
from resources.ml.features.catalog import FEATURES, Feature
from resources.ml.features.time_guard import LeakageError

VALUE_AUC_LIMIT = 0.9
NULL_PURITY_LIMIT = 0.98
NULL_MIN_ROWS = 30
LABEL = "is_late"


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Direction-free ROC AUC (a feature that predicts *on time* leaks as much as one predicting late)."""
    if len(y) == 0 or y.min() == y.max() or np.unique(score).size < 2:
        return None
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def _value_score(column: pl.Series, y: pl.Series, categorical: bool) -> np.ndarray:
    if not categorical:
        return column.cast(pl.Float64).to_numpy()
    # A category's own late rate, the best a single categorical column can do on this window.
    frame = pl.DataFrame({"v": column.cast(pl.String), "y": y})
    return frame.with_columns(pl.col("y").mean().over("v").alias("s"))["s"].to_numpy()


def audit_row(feature: Feature, column: pl.Series, y: pl.Series) -> dict:
    is_null = column.is_null()
    nulls = int(is_null.sum())
    present = ~is_null
    y_all = y.to_numpy()
    value_auc = _auc(
        y.filter(present).to_numpy(),
        _value_score(column.filter(present), y.filter(present), feature.kind == "categorical"),
    )
    null_auc = _auc(y_all, is_null.cast(pl.Int8).to_numpy()) if 0 < nulls < len(column) else None
    null_late = float(y.filter(is_null).mean()) if nulls else None
    problems = []
    if feature.known not in RULES:
        problems.append(f"known {feature.known!r}: no availability rule says when it is known")
    if value_auc is not None and value_auc >= VALUE_AUC_LIMIT:
        problems.append(f"value alone separates the label (ROC AUC {value_auc:.3f})")
    if null_auc is not None and null_auc >= VALUE_AUC_LIMIT:
        problems.append(f"missingness alone separates the label (ROC AUC {null_auc:.3f})")
    if nulls >= NULL_MIN_ROWS and null_late is not None and max(null_late, 1 - null_late) >= NULL_PURITY_LIMIT:
        problems.append(
            f"missing in {nulls} rows of which {null_late:.1%} are late: whether it is missing "
            "is decided by the outcome"
        )
    return {
        "feature": feature.name,
        "known": feature.known,
        "kind": feature.kind,
        "value_roc_auc": value_auc,
        "null_rows": nulls,
        "null_share": nulls / max(len(column), 1),
        "null_roc_auc": null_auc,
        "null_late_rate": null_late,
        "problem": "; ".join(problems) or None,
    }


AUDIT_SCHEMA = {
    "feature": pl.String,
    "known": pl.String,
    "kind": pl.String,
    "value_roc_auc": pl.Float64,
    "null_rows": pl.Int64,
    "null_share": pl.Float64,
    "null_roc_auc": pl.Float64,
    "null_late_rate": pl.Float64,
    "problem": pl.String,
}


def leakage_audit(data: pl.DataFrame, features: Sequence[Feature] = FEATURES) -> pl.DataFrame:
    """One row per feature (strongest first): single-feature and null-indicator AUC, null group's
    late rate, and the problem found, if any. ``data`` holds the features and ``is_late``."""
    y = data[LABEL].cast(pl.Int8)
    rows = [audit_row(f, data[f.name], y) for f in features]
    return pl.DataFrame(rows, schema=AUDIT_SCHEMA).sort(
        pl.max_horizontal(pl.col("value_roc_auc").fill_null(0), pl.col("null_roc_auc").fill_null(0)), descending=True
    )


def assert_audit_passes(audit: pl.DataFrame) -> None:
    bad = audit.filter(pl.col("problem").is_not_null())
    if bad.height:
        raise LeakageError(
            "leakage audit failed: " + " | ".join(f"{r['feature']}: {r['problem']}" for r in bad.iter_rows(named=True))
        )
