"""Which of a model's scored days it saw: every figure is labelled with its sample.

**In-sample vs out-of-sample.** A model's registry record has ``split`` {train_start,
validation_start, test_start, test_end}: every day before ``test_start`` was trained on or used to
select the model, so its scores flatter it (on the embedded year, January-October scored
ROC AUC 0.78-0.835 in-sample next to ~0.75 honest). Quality is a headline only for out-of-sample
days; in-sample figures are kept, labelled ``in_sample`` everywhere they appear (sidecar, HTML
title and banner, index, daily rows, Dagster metadata, Evidently tags), and never raise or
suppress an alert. A month that straddles ``test_start`` is ``mixed``: its headline uses only the
out-of-sample days. Where the walk-forward backtest (``ml.backtest_scores``) covers a month, its
out-of-sample ROC AUC is shown beside the in-sample figure.
"""

from __future__ import annotations

from datetime import date

IN_SAMPLE, OUT_OF_SAMPLE, MIXED = "in_sample", "out_of_sample", "mixed"
NOT_JUDGED = "not_judged"
# An out-of-sample AUC from fewer flights than this (~1 day) is too noisy to alert on (the AUC of
# ~900 flights has a standard error near 0.02, the alert threshold is 0.05).
MIN_OUT_OF_SAMPLE_FLIGHTS = 1_000


def out_of_sample_from(record: dict) -> date:
    """First day the model never saw (training or selection). A record without a split (not a
    trained production model) has no out-of-sample days."""
    split = record.get("split") or {}
    return date.fromisoformat(split["test_start"]) if split.get("test_start") else date.max


def sample_of(day: date, oos_from: date) -> str:
    return OUT_OF_SAMPLE if day >= oos_from else IN_SAMPLE


def period_sample(days: list[date], oos_from: date) -> str:
    kinds = {sample_of(d, oos_from) for d in days}
    return kinds.pop() if len(kinds) == 1 else MIXED


def sample_label(sample: str) -> str:
    return {
        OUT_OF_SAMPLE: "out of sample",
        IN_SAMPLE: "IN-SAMPLE",
        MIXED: "mixed (headline: out-of-sample days)",
        NOT_JUDGED: "not judged",
    }.get(sample, sample)
