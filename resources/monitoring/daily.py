"""A day's monitoring rows on their own: what a new day costs, without Evidently or the month.

The daily drift row of a day compares that day with the 42 days before *its month* (the same
reference the monthly report uses), so computing one day alone gives the row the monthly run
gives it (tests/test_drift.py: PSI per day in one pass equals PSI of each day alone). Quality
rows are written for days whose actuals have arrived. The monthly reports (HTML, sidecars,
checks) stay with the month's close.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import groupby

import polars as pl

from resources.core.settings import Settings
from resources.ml.lake import load_labels
from resources.monitoring.actuals import missing_actuals
from resources.monitoring.daily_rows import daily_drift_rows, daily_quality_rows, write_daily_rows
from resources.monitoring.drift import judge, profile_for_month
from resources.monitoring.month_inputs import model_drift_profile, reference_for, scored_month
from resources.monitoring.paths import DRIFT_ROWS, QUALITY_ROWS
from resources.monitoring.samples import out_of_sample_from


def monitor_days(settings: Settings, registry, days: list[date], as_of: date, log=print) -> dict[date, dict]:
    """Drift rows (and quality rows once labelled) of ``days``; {day: figures} for the days that
    were scored."""
    out: dict[date, dict] = {}
    for _, group in groupby(sorted(days), key=lambda d: (d.year, d.month)):
        group = list(group)
        scored = scored_month(settings, group[0], group[-1] + timedelta(days=1))
        if scored is None:
            log(f"{group[0]}..{group[-1]}: no scores yet")
            continue
        current, version = scored
        record = registry.record(version)
        oos_from = out_of_sample_from(record)
        reference = reference_for(settings, registry, version, group[0].replace(day=1))
        verdict = None
        if reference is not None:
            share_warn = float((record.get("monitoring") or {}).get("drift_share_warn", 0.5))
            profile, _ = profile_for_month(model_drift_profile(settings, registry, version, log), f"{group[0]:%Y-%m}")
            verdict = judge(reference, current, profile, share_warn)
        drift = daily_drift_rows(current, verdict, version, oos_from)
        write_daily_rows(settings, DRIFT_ROWS, drift)
        for row in drift.iter_rows(named=True):
            out[row["metric_date"]] = {
                "flights_scored": row["flights_scored"],
                "drift_share": row["drift_share"],
                "prediction_mean": row["prediction_mean"],
                "sample": row["sample"],
                "model_version": version,
            }
        labelled_days = [d for d in group if not missing_actuals([d], as_of)]
        if labelled_days:
            labelled = current.filter(pl.col("flight_date").is_in(labelled_days)).join(
                load_labels(settings, labelled_days[0], labelled_days[-1] + timedelta(days=1)), on="flight_id"
            )
            if labelled.height:
                quality = daily_quality_rows(labelled, version, oos_from)
                write_daily_rows(settings, QUALITY_ROWS, quality)
                for row in quality.iter_rows(named=True):
                    out.setdefault(row["metric_date"], {}).update(
                        {"labelled_flights": row["labelled_flights"], "roc_auc": row["roc_auc"]}
                    )
    return out
