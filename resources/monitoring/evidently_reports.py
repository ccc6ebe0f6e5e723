"""Evidently's drift and quality reports of a month: the figures of its HTML. Evidently is imported
inside the functions that build a report, so importing this module does not load it."""

from __future__ import annotations

import os
from datetime import date, datetime, time

import polars as pl

from resources.core.frames import compact
from resources.ml.features.catalog import CATEGORICAL
from resources.monitoring.actuals import TARGET
from resources.monitoring.drift import PREDICTION

# Evidently is imported lazily inside the functions below, after this: no telemetry.
os.environ.setdefault("DO_NOT_TRACK", "1")


def _usable_columns(columns, *frames: pl.DataFrame) -> list[str]:
    """Columns with at least one value in every frame: Evidently refuses an all-null column
    (a calm day has no wind gusts at all)."""
    return [c for c in columns if all(c in f.columns and f[c].null_count() < f.height for f in frames)]


def _fixed_psi(column: str, value: float) -> str:
    """An Evidently stat test that answers the PSI the verdict computed for ``column`` (every
    flight, nulls as a bin), so the HTML's per-column values, drifted columns and share are the
    headline's own, not a second computation on Evidently's null-dropped sample."""
    from evidently.legacy.calculations.stattests.registry import StatTest, _registered_stat_tests, register_stattest
    from evidently.legacy.core import ColumnType

    name = f"psi_verdict:{column}:{value!r}"
    if name not in _registered_stat_tests:

        def _psi(reference, current, feature_type, threshold):
            return value, value > threshold

        register_stattest(
            StatTest(
                name=name,
                display_name="PSI vs trailing 6 weeks (every flight; nulls a bin)",
                allowed_feature_types=[ColumnType.Numerical, ColumnType.Categorical],
                default_threshold=0.1,
            ),
            _psi,
        )
    return name


def _dataset(frame: pl.DataFrame, numerical: list[str], categorical: list[str], classification: bool):
    from evidently import BinaryClassification, DataDefinition, Dataset

    definition = DataDefinition(
        numerical_columns=numerical,
        categorical_columns=categorical,
        classification=[BinaryClassification(target=TARGET, prediction_probas=PREDICTION)] if classification else None,
    )
    return Dataset.from_pandas(frame.select(*numerical, *categorical).to_pandas(), data_definition=definition)


# Rows an Evidently report is computed from. Its cost is mostly per column (~0.15 s each for 43
# columns whatever the rows: 7.4 s on a month of 28k flights, 5.0 s on 5k, measured 2026-12-02),
# but it grows with rows at scale (a month is 2.8 M flights at SF=100). Headline figures, the
# drift verdict, the daily rows and the alert thresholds always use every flight; the HTML's
# figures come from this reproducible sample when a month holds more (never on the year: its
# months hold <= 30k flights, their reference windows <= 42k).
EVIDENTLY_MAX_ROWS = 100_000


def evidently_rows(frame: pl.DataFrame, max_rows: int = EVIDENTLY_MAX_ROWS) -> pl.DataFrame:
    # Compacted: a report waits for ``ReportWriter.finish`` with the other months', and the sample's
    # string views would hold the month's and its reference's buffers (at SF=100 the run went past
    # 20 GiB with them).
    return frame if frame.height <= max_rows else compact(frame.sort("flight_id").sample(n=max_rows, seed=0))


def sampled_note(*frames: pl.DataFrame) -> str:
    big = [f.height for f in frames if f.height > EVIDENTLY_MAX_ROWS]
    return (
        f" [HTML figures on a {EVIDENTLY_MAX_ROWS:,}-row sample of {max(big):,} flights; headline on all]"
        if big
        else ""
    )


def drift_report(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    thresholds: dict[str, float],
    psi: dict[str, float],
    period_start: date,
    tags: list[str],
    metadata: dict,
):
    """Evidently's drift report of the verdict (drift.judge): each column's PSI and threshold are
    the verdict's, and dataset drift is declared when one column is past its threshold, the rule
    the alarm follows, so the report never says "not detected" under an alarm."""
    from evidently import Report
    from evidently.metrics import MeanValue
    from evidently.presets import DataDriftPreset

    judged = [c for c in psi if c != PREDICTION]
    columns = _usable_columns(judged, reference, current)
    numerical = [c for c in columns if c not in CATEGORICAL] + [PREDICTION]
    categorical = [c for c in columns if c in CATEGORICAL]
    # p_late is judged like any column; a column with no value on either side cannot be shown
    shown = [*columns, *([PREDICTION] if PREDICTION in psi else [])]
    report = Report(
        [
            DataDriftPreset(
                columns=shown,
                drift_share=1 / len(shown),
                per_column_method={c: _fixed_psi(c, psi[c]) for c in shown},
                per_column_threshold={c: thresholds[c] for c in shown},
            ),
            MeanValue(column=PREDICTION),
        ]
    )
    return report.run(
        _dataset(current, numerical, categorical, False),
        _dataset(reference, numerical, categorical, False),
        timestamp=datetime.combine(period_start, time()),
        tags=tags,
        metadata=metadata,
    )


def quality_report(current: pl.DataFrame, period_start: date, tags: list[str], metadata: dict):
    """Classification quality of ``current`` (features, p_late, is_late) on its own (no reference:
    the training rows would be an in-sample comparison). ``late`` is the label as a number, so the
    dashboard can plot the late rate."""
    from evidently import Report
    from evidently.metrics import MeanValue
    from evidently.presets import ClassificationPreset

    frame = current.with_columns(pl.col(TARGET).cast(pl.Float64).alias("late"))
    dataset = _dataset(frame, [PREDICTION, "late"], [TARGET], True)
    return Report([ClassificationPreset(), MeanValue(column="late"), MeanValue(column=PREDICTION)]).run(
        dataset, None, timestamp=datetime.combine(period_start, time()), tags=tags, metadata=metadata
    )
