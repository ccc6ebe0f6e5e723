"""Model monitoring of a month: drift of features and predictions, and classification quality once
actual arrivals are known; Evidently HTML for people, vectorised daily rows for the catalog.

**Drift** (resources/monitoring/drift.py): each month against the 42 days before it, PSI per column with
thresholds calibrated on the training period (registry ``monitoring.drift_profile``); a training
month is judged by thresholds fitted without it.

**Quality alarm** (resources/monitoring/quality.py): a month's out-of-sample ROC AUC below, or
calibration error above, the range the walk-forward backtest months before it showed. The index
shows per month whether the drift and quality alarms agree.

Periods, chosen for readers and disk: every Evidently HTML embeds ~4-6 MB of scripts, so a report
a day would be ~1.4-2 GB a year. Each month gets one drift and one quality HTML; each day gets a
cheap metrics row (no HTML, numpy) in ``monitoring/daily_*``. An HTML is rebuilt only when a hash
of its inputs changed (an Evidently drift run costs ~6 s a month).

In-sample vs out-of-sample labelling: resources/monitoring/samples.py; when actuals are known:
resources/monitoring/actuals.py.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial

import polars as pl

from resources.core.settings import Settings
from resources.ml.lake import load_labels, read_backtest_scores
from resources.monitoring.actuals import TARGET, missing_actuals
from resources.monitoring.auc import auc
from resources.monitoring.daily_rows import daily_drift_rows, daily_quality_rows, write_daily_rows
from resources.monitoring.drift import (
    FIT_LABELS,
    MIN_REFERENCE_DAYS,
    PREDICTION,
    judge,
    profile_for_month,
    reference_window,
)
from resources.monitoring.evidently_reports import drift_report, evidently_rows, quality_report, sampled_note
from resources.monitoring.month_inputs import Log, model_drift_profile, reference_for, scored_month
from resources.monitoring.paths import DRIFT_ROWS, QUALITY_ROWS, month_key
from resources.monitoring.quality import calibration_error, judge_quality, read_backtest_metrics
from resources.monitoring.report_files import inputs_sha256, reuse_if_unchanged, write_sidecar
from resources.monitoring.report_jobs import ReportJob, ReportWriter
from resources.monitoring.samples import (
    IN_SAMPLE,
    MIN_OUT_OF_SAMPLE_FLIGHTS,
    MIXED,
    NOT_JUDGED,
    OUT_OF_SAMPLE,
    out_of_sample_from,
    period_sample,
)


def monitor_drift_month(
    settings: Settings, registry, start: date, end: date, log: Log = print, writer: ReportWriter | None = None
) -> dict | None:
    """Judge one month, write its daily rows, its sidecar and (if inputs changed) its HTML. With a
    ``writer``, the HTML is left to ``writer.finish()`` (side by side with other months) and the
    summary returned here is marked ``pending``."""
    month = month_key(start)
    scored = scored_month(settings, start, end)
    if scored is None:
        log(f"{month}: no scores yet, nothing to monitor")
        return None
    current, version = scored
    record = registry.record(version)
    oos_from = out_of_sample_from(record)
    days = sorted(set(current["flight_date"].to_list()))
    share_warn = float((record.get("monitoring") or {}).get("drift_share_warn", 0.5))
    reference = reference_for(settings, registry, version, start)
    base = {
        "model_version": version,
        "flights": current.height,
        "sample": period_sample(days, oos_from),
        "prediction_mean": float(current[PREDICTION].mean()),
        "threshold": share_warn,
    }
    if reference is None:
        log(f"{month}: fewer than {MIN_REFERENCE_DAYS} days of features before {start}: drift not judged")
        write_daily_rows(settings, DRIFT_ROWS, daily_drift_rows(current, None, version, oos_from))
        return write_sidecar(
            settings.reports_dir,
            "drift",
            month,
            {
                **base,
                "status": NOT_JUDGED,
                "alarm": False,
                "drift_share": None,
                "drifted_features": 0,
                "drifted_feature_names": [],
                "prediction_drift": None,
                "prediction_drifted": False,
                "reason": f"no reference: fewer than {MIN_REFERENCE_DAYS} days of features before {start}",
            },
        )
    profile, fit = profile_for_month(model_drift_profile(settings, registry, version, log), month)
    verdict = judge(reference, current, profile, share_warn)
    write_daily_rows(settings, DRIFT_ROWS, daily_drift_rows(current, verdict, version, oos_from))
    summary = {
        **base,
        "status": "judged",
        "alarm": verdict.alarm,
        "reason": verdict.reason or "within training variation",
        "threshold_fit": fit,
        "threshold_fit_note": FIT_LABELS[fit],
        "drift_share": verdict.share,
        "drifted_features": len(verdict.drifted),
        "drifted_feature_names": verdict.drifted,
        "prediction_drift": verdict.prediction_psi,
        "prediction_drifted": verdict.prediction_drifted,
        "columns_judged": verdict.columns,
        "reference_start": str(reference_window(start)[0]),
        "reference_end": str(start - timedelta(days=1)),
        "profile_windows": profile["windows"],
        "psi": {c: round(v, 4) for c, v in verdict.psi.items()},
        "psi_thresholds": verdict.thresholds,
    }
    digest = inputs_sha256(
        [reference, current],
        {"thresholds": verdict.thresholds, "share_warn": share_warn, "model_version": version, "threshold_fit": fit},
    )
    kept = reuse_if_unchanged(settings.reports_dir, "drift", month, digest, summary, log)
    if kept is not None:
        return kept
    tags = ["drift", base["sample"], f"period:{month}"]
    build = partial(
        drift_report,
        evidently_rows(reference),
        evidently_rows(current),
        verdict.thresholds,
        verdict.psi,
        start,
        tags,
        {"period": month, "model_version": version},
    )
    title = (
        f"Drift {month}: {'ALARM: ' + verdict.reason if verdict.alarm else 'within training variation'} "
        f"(vs {summary['reference_start']}..{summary['reference_end']}, model {version})"
    )
    title += sampled_note(reference, current)
    return _report(
        settings,
        writer,
        ReportJob(
            "drift",
            month,
            settings.reports_dir,
            build,
            {**summary, "inputs_sha256": digest, "evidently_skipped": False},
            title,
        ),
    )


def _report(settings: Settings, writer: ReportWriter | None, job: ReportJob) -> dict:
    """Hand ``job`` to ``writer`` (its summary, marked pending, is returned), or compute it now."""
    if writer is not None:
        writer.submit(job)
        return {**job.summary, "pending": True}
    own = ReportWriter(settings, workers=1)
    own.submit(job)
    return own.finish()[(job.kind, job.period)]


def backtest_quality(settings: Settings, labelled: pl.DataFrame, start: date, end: date) -> dict:
    """Walk-forward backtest ROC AUC of the month (out of sample by construction), if present."""
    scores = read_backtest_scores(settings, start, end)
    if scores.height == 0 or PREDICTION not in scores.columns:
        return {}
    joined = scores.select("flight_id", PREDICTION, *[c for c in ("trained_through",) if c in scores.columns]).join(
        labelled.select("flight_id", TARGET), on="flight_id", how="inner"
    )
    if joined.height == 0:
        return {}
    through = joined["trained_through"].max() if "trained_through" in joined.columns else None
    return {
        "backtest_roc_auc": auc(joined),
        "backtest_flights": joined.height,
        "backtest_calibration_error": calibration_error(joined[TARGET].to_numpy(), joined[PREDICTION].to_numpy()),
        "backtest_trained_through": str(through) if through is not None else None,
    }


def quality_figures(summary: dict) -> tuple[dict | None, str]:
    """The month's out-of-sample figures the quality alarm judges, and whose they are: the
    production model's out-of-sample days when there are enough of them, else the walk-forward
    backtest's scores of the month (out of sample by construction). In-sample scores never count."""
    if summary["out_of_sample_flights"] >= MIN_OUT_OF_SAMPLE_FLIGHTS and summary["roc_auc"] is not None:
        return (
            {"roc_auc": summary["roc_auc"], "calibration_error": summary["calibration_error"]},
            f"production model {summary['model_version']}, {summary['out_of_sample_flights']:,} out-of-sample flights",
        )
    if summary.get("backtest_roc_auc") is not None and summary.get("backtest_flights", 0) >= MIN_OUT_OF_SAMPLE_FLIGHTS:
        return (
            {"roc_auc": summary["backtest_roc_auc"], "calibration_error": summary["backtest_calibration_error"]},
            f"walk-forward backtest, {summary['backtest_flights']:,} flights (the production model has "
            f"{summary['out_of_sample_flights']:,} out-of-sample flights this month)",
        )
    return None, (
        f"{summary['out_of_sample_flights']:,} out-of-sample flights of the production model "
        f"(fewer than {MIN_OUT_OF_SAMPLE_FLIGHTS:,}) and no walk-forward backtest of the month"
    )


def monitor_quality_month(
    settings: Settings,
    registry,
    start: date,
    end: date,
    as_of: date,
    log: Log = print,
    writer: ReportWriter | None = None,
) -> dict | None:
    """Quality of one month once its actuals arrived: headline ROC AUC from out-of-sample days
    only; in-sample days reported separately and labelled. Returns None when there is nothing to
    report yet (``{"waiting": ...}`` when the actuals have not arrived)."""
    month = month_key(start)
    scored = scored_month(settings, start, end)
    if scored is None:
        return None
    current, version = scored
    missing = missing_actuals(sorted(set(current["flight_date"].to_list())), as_of)
    if missing:
        return {"waiting": f"actuals not yet arrived for {len(missing)} day(s) from {missing[0]} (as of {as_of})"}
    current = current.join(load_labels(settings, start, end), on="flight_id", how="inner")
    record = registry.record(version)
    oos_from = out_of_sample_from(record)
    oos = current.filter(pl.col("flight_date") >= oos_from)
    ins = current.filter(pl.col("flight_date") < oos_from)
    sample = OUT_OF_SAMPLE if ins.height == 0 else IN_SAMPLE if oos.height == 0 else MIXED
    holdout = (record.get("test") or {}).get("roc_auc")
    oos_auc = auc(oos)
    write_daily_rows(settings, QUALITY_ROWS, daily_quality_rows(current, version, oos_from))
    summary = {
        "model_version": version,
        "sample": sample,
        "out_of_sample_from": str(oos_from) if oos_from != date.max else None,
        "roc_auc": oos_auc,
        "out_of_sample_flights": oos.height,
        "calibration_error": calibration_error(oos[TARGET].to_numpy(), oos[PREDICTION].to_numpy())
        if oos.height
        else None,
        "out_of_sample_days": oos["flight_date"].n_unique() if oos.height else 0,
        "in_sample_roc_auc": auc(ins),
        "in_sample_flights": ins.height,
        "late_rate": float(current[TARGET].mean()),
        "labelled_flights": current.height,
        "prediction_mean": float(current[PREDICTION].mean()),
        "holdout_roc_auc": holdout,
        "auc_drop": (holdout - oos_auc) if holdout is not None and oos_auc is not None else None,
        "threshold": float((record.get("monitoring") or {}).get("auc_drop_warn", 0.05)),
        **backtest_quality(settings, current, start, end),
    }
    figures, source = quality_figures(summary)
    summary.update(judge_quality(month, figures, source, read_backtest_metrics(settings)).as_summary())
    # The report shows what can be trusted: the out-of-sample days when there are any.
    shown = oos if oos.height else current
    digest = inputs_sha256(
        [shown.select("flight_id", "flight_date", PREDICTION, TARGET)],
        {"sample": sample, "model_version": version, "quality_reason": summary["quality_reason"]},
    )
    kept = reuse_if_unchanged(settings.reports_dir, "quality", month, digest, summary, log)
    if kept is not None:
        return kept
    if sample == IN_SAMPLE:
        title = (
            f"Quality {month}: IN-SAMPLE, model {version} was trained or selected on these days "
            f"(before {oos_from}); not a quality estimate"
        )
    else:
        title = (
            f"Quality {month}: out of sample ({summary['out_of_sample_days']} days from "
            f"{max(start, oos_from)}), model {version}"
        )
    if summary["quality_alarm"]:
        title += f"; QUALITY ALARM: {summary['quality_reason']}"
    title += sampled_note(shown)
    build = partial(
        quality_report,
        evidently_rows(shown),
        start,
        ["quality", sample, f"period:{month}"],
        {"period": month, "model_version": version, "sample": sample},
    )
    return _report(
        settings,
        writer,
        ReportJob(
            "quality",
            month,
            settings.reports_dir,
            build,
            {**summary, "inputs_sha256": digest, "evidently_skipped": False},
            title,
        ),
    )
