"""Model monitoring: drift of features and predictions, and classification quality once actual
arrivals are known; Evidently HTML for people, vectorised daily rows for the catalog.

**In-sample vs out-of-sample.** A model's registry record has ``split`` {train_start,
validation_start, test_start, test_end}: every day before ``test_start`` was trained on or used to
select the model, so its scores flatter it (on the embedded year, January-October scored
ROC AUC 0.78-0.835 in-sample next to ~0.75 honest). Quality is a headline only for out-of-sample
days; in-sample figures are kept, labelled ``in_sample`` everywhere they appear (sidecar, HTML
title and banner, index, daily rows, Dagster metadata, Evidently tags), and never raise or
suppress an alert. A month that straddles ``test_start`` is ``mixed``: its headline uses only the
out-of-sample days. Where the walk-forward backtest (``ml/backtest_scores``) covers a month, its
out-of-sample ROC AUC is shown beside the in-sample figure.

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

Actuals: a flight's outcome is final one day after its scheduled date (arrivals after midnight,
diversions resolved). Quality for a month is computed only once every scored day in it is at least
``ACTUALS_LAG_DAYS`` old relative to the clock (``as_of``, today unless a run sets it).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta, timezone
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

from resources.core.file_lock import exclusive
from resources.core.parquet_io import append_lines, write_parquet_atomic, write_text_atomic
from resources.core.settings import Settings
from resources.ml.features import CATEGORICAL
from resources.ml.scoring import read_scores
from resources.ml.store import feature_table, load_labels, read_backtest_scores, read_features
from resources.monitoring.drift import EXCLUDED as DRIFT_EXCLUDED
from resources.monitoring.drift import (
    FIT_LABELS,
    MIN_REFERENCE_DAYS,
    PREDICTION,
    PROFILE_VERSION,
    DriftVerdict,
    drift_profile,
    judge,
    merge_profiles,
    profile_for_month,
    reference_window,
)
from resources.monitoring.quality import calibration_error, judge_quality, read_backtest_metrics
from resources.monitoring.report_jobs import ReportJob, ReportWriter

# Evidently is imported lazily inside the functions below, after this: no telemetry.
os.environ.setdefault("DO_NOT_TRACK", "1")

ACTUALS_LAG_DAYS = 1
TARGET = "is_late"
PROJECT = "flight-delay-monitoring"
IN_SAMPLE, OUT_OF_SAMPLE, MIXED = "in_sample", "out_of_sample", "mixed"
NOT_JUDGED = "not_judged"
# An out-of-sample AUC from fewer flights than this (~1 day) is too noisy to alert on (the AUC of
# ~900 flights has a standard error near 0.02, the alert threshold is 0.05).
MIN_OUT_OF_SAMPLE_FLIGHTS = 1_000
# Bump when the HTML a report produces changes for the same inputs: forces a rebuild.
REPORT_FORMAT = 2
Log = Callable[[str], None]


def monitoring_dir(settings: Settings) -> Path:
    return settings.root / "monitoring"


def alerts_path(settings: Settings) -> Path:
    return monitoring_dir(settings) / "alerts.jsonl"


def workspace_dir(settings: Settings) -> Path:
    # Evidently's UI workspace writes through local file APIs: on an object-storage root it is
    # local state (the HTML reports and the metrics, the monitoring outputs, are on the store).
    if settings.remote:
        return settings.local_root / "monitoring" / "evidently"
    return monitoring_dir(settings) / "evidently"


def profiles_dir(settings: Settings) -> Path:
    return monitoring_dir(settings) / "profiles"


def month_key(day: date) -> str:
    return f"{day:%Y-%m}"


def month_file(settings: Settings, kind: str, month: str) -> Path:
    return monitoring_dir(settings) / kind / f"month={month}.parquet"


def day_file(settings: Settings, kind: str, day: date) -> Path:
    return monitoring_dir(settings) / kind / f"day={day.isoformat()}.parquet"


def write_daily_rows(settings: Settings, kind: str, rows: pl.DataFrame) -> dict[date, int]:
    """One file per day (``metric_date``), so a new day writes only its own file and a monthly
    run rewrites its days; a month file of the earlier layout is removed when its days are."""
    written = {}
    for (day,), part in rows.partition_by("metric_date", as_dict=True).items():
        write_parquet_atomic(part, day_file(settings, kind, day))
        month_file(settings, kind, month_key(day)).unlink(missing_ok=True)
        written[day] = part.height
    return written


# --- in-sample vs out-of-sample ----------------------------------------------------------------
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


# --- reading a month ---------------------------------------------------------------------------
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
        from resources.ml.training import predict

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


# --- Evidently ---------------------------------------------------------------------------------
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
    return frame if frame.height <= max_rows else frame.sort("flight_id").sample(n=max_rows, seed=0)


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


def inputs_sha256(frames: list[pl.DataFrame], extra: dict) -> str:
    """What a report depends on: its data (row hashes, column names and types), its settings, the
    report format and the Evidently version. Equal hash = same HTML, so the run can be skipped."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for frame in frames:
        digest.update(json.dumps([frame.columns, [str(t) for t in frame.dtypes]]).encode())
        digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    digest.update(
        json.dumps(
            {**extra, "format": REPORT_FORMAT, "evidently": version("evidently")}, sort_keys=True, default=str
        ).encode()
    )
    return digest.hexdigest()


def sidecar_path(reports_dir: Path, kind: str, period: str) -> Path:
    return reports_dir / kind / f"{kind}_{period}.json"


def unchanged(reports_dir: Path, kind: str, period: str, digest: str) -> dict | None:
    """The existing sidecar if its HTML exists and was built from these exact inputs."""
    path = sidecar_path(reports_dir, kind, period)
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a hand-edited or truncated sidecar: rebuild
    html_ok = meta.get("html") is None or (reports_dir / meta["html"]).exists()
    return meta if meta.get("inputs_sha256") == digest and html_ok else None


def write_report(snapshot, reports_dir: Path, kind: str, period: str, summary: dict, title: str) -> Path:
    """HTML (with ``title`` as its <title> and a banner) plus a JSON sidecar (period, model,
    sample, headline numbers) that the index is built from."""
    target = reports_dir / kind / f"{kind}_{period}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    page = snapshot.get_html_str(as_iframe=False)
    colour = "#b00020" if summary.get("sample") == IN_SAMPLE else "#1b5e20"
    banner = (
        f'<div id="monitoring-banner" style="font:600 15px sans-serif;padding:.6em 1em;color:#fff;'
        f'background:{colour}">{html.escape(title)}</div>'
    )
    page = page.replace("<head>", f"<head>\n<title>{html.escape(title)}</title>", 1)
    page = page.replace("<body>", f"<body>\n{banner}", 1)
    write_text_atomic(target, page)
    write_sidecar(
        reports_dir,
        kind,
        period,
        {**summary, "title": title, "html": str(target.relative_to(reports_dir)), "bytes": target.stat().st_size},
    )
    return target


def write_sidecar(reports_dir: Path, kind: str, period: str, summary: dict) -> dict:
    sidecar = {
        "kind": kind,
        "period": period,
        "html": None,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **summary,
    }
    path = sidecar_path(reports_dir, kind, period)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(sidecar, indent=2, sort_keys=True, default=str))
    return sidecar


# --- one month of drift ------------------------------------------------------------------------
def daily_drift_rows(
    current: pl.DataFrame, verdict: DriftVerdict | None, model_version: str, oos_from: date
) -> pl.DataFrame:
    """One row per scored day: flights, mean p_late, and (when the month has a reference) the
    share of judged features past their *daily* threshold and p_late's PSI."""
    base = (
        current.group_by("flight_date")
        .agg(pl.len().alias("flights_scored"), pl.col(PREDICTION).mean().alias("prediction_mean"))
        .sort("flight_date")
    )
    if verdict is not None:
        base = base.join(verdict.daily, on="flight_date", how="left")
    else:
        base = base.with_columns(
            pl.lit(None, pl.Float64).alias("drift_share"),
            pl.lit(None, pl.Int64).alias("drifted_features"),
            pl.lit(None, pl.Float64).alias("prediction_drift"),
            pl.lit(None, pl.Boolean).alias("prediction_drifted"),
        )
    return base.select(
        pl.col("flight_date").alias("metric_date"),
        pl.lit(model_version).alias("model_version"),
        pl.col("flights_scored").cast(pl.Int64),
        "drift_share",
        pl.col("drifted_features").cast(pl.Int64),
        "prediction_mean",
        "prediction_drift",
        "prediction_drifted",
        pl.when(pl.col("flight_date") >= oos_from)
        .then(pl.lit(OUT_OF_SAMPLE))
        .otherwise(pl.lit(IN_SAMPLE))
        .alias("sample"),
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
        write_daily_rows(settings, "daily_drift", daily_drift_rows(current, None, version, oos_from))
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
    write_daily_rows(settings, "daily_drift", daily_drift_rows(current, verdict, version, oos_from))
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
    previous = unchanged(settings.reports_dir, "drift", month, digest)
    if previous is not None:
        log(f"{month}: drift inputs unchanged (sha256 {digest[:12]}): Evidently run skipped")
        return write_sidecar(
            settings.reports_dir,
            "drift",
            month,
            {**previous, **summary, "inputs_sha256": digest, "evidently_skipped": True},
        )
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


# --- one month of quality ----------------------------------------------------------------------
def daily_auc(frame: pl.DataFrame, by: str = "flight_date") -> pl.DataFrame:
    """ROC AUC per group, vectorised (Mann-Whitney: mean rank of the late flights). Null where a
    group has only one class."""
    ranked = frame.with_columns(pl.col(PREDICTION).rank("average").over(by).alias("_rank"))
    out = (
        ranked.group_by(by)
        .agg(
            pl.len().alias("labelled_flights"),
            pl.col(TARGET).sum().alias("_pos"),
            pl.col("_rank").filter(pl.col(TARGET) == 1).sum().alias("_rank_pos"),
            pl.col(TARGET).cast(pl.Float64).mean().alias("late_rate"),
        )
        .with_columns((pl.col("labelled_flights") - pl.col("_pos")).alias("_neg"))
    )
    auc = (pl.col("_rank_pos") - pl.col("_pos") * (pl.col("_pos") + 1) / 2) / (pl.col("_pos") * pl.col("_neg"))
    return (
        out.with_columns(
            pl.when((pl.col("_pos") > 0) & (pl.col("_neg") > 0)).then(auc).otherwise(None).alias("roc_auc")
        )
        .drop("_pos", "_neg", "_rank_pos")
        .sort(by)
    )


def auc(frame: pl.DataFrame) -> float | None:
    if frame.height == 0:
        return None
    value = daily_auc(frame.with_columns(pl.lit(0).alias("_all")), by="_all")["roc_auc"][0]
    return None if value is None else float(value)


def daily_quality_rows(current: pl.DataFrame, model_version: str, oos_from: date) -> pl.DataFrame:
    return daily_auc(current).select(
        pl.col("flight_date").alias("metric_date"),
        pl.lit(model_version).alias("model_version"),
        pl.col("labelled_flights").cast(pl.Int64),
        "roc_auc",
        "late_rate",
        pl.when(pl.col("flight_date") >= oos_from)
        .then(pl.lit(OUT_OF_SAMPLE))
        .otherwise(pl.lit(IN_SAMPLE))
        .alias("sample"),
    )


def missing_actuals(days: list[date], as_of: date) -> list[date]:
    return [d for d in days if d + timedelta(days=ACTUALS_LAG_DAYS) > as_of]


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
    write_daily_rows(settings, "daily_quality", daily_quality_rows(current, version, oos_from))
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
    previous = unchanged(settings.reports_dir, "quality", month, digest)
    if previous is not None:
        log(f"{month}: quality inputs unchanged (sha256 {digest[:12]}): Evidently run skipped")
        return write_sidecar(
            settings.reports_dir,
            "quality",
            month,
            {**previous, **summary, "inputs_sha256": digest, "evidently_skipped": True},
        )
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


# --- trend chart and the index -----------------------------------------------------------------
def read_sidecars(reports_dir: Path) -> list[dict]:
    entries = []
    for sidecar in sorted(reports_dir.glob("*/*.json")):
        try:
            meta = json.loads(sidecar.read_text())
        except json.JSONDecodeError:
            continue  # a truncated sidecar is rebuilt by the next run of its month
        if meta.get("html") and not (reports_dir / meta["html"]).exists():
            continue
        entries.append(meta)
    return entries


def trend_rows(entries: list[dict]) -> list[dict]:
    """One row per month: quality and drift figures side by side."""
    by_month: dict[str, dict] = {}
    for e in entries:
        row = by_month.setdefault(e["period"], {"period": e["period"]})
        if e["kind"] == "quality":
            row.update(
                {
                    k: e.get(k)
                    for k in (
                        "roc_auc",
                        "in_sample_roc_auc",
                        "backtest_roc_auc",
                        "late_rate",
                        "holdout_roc_auc",
                        "out_of_sample_flights",
                        "quality_alarm",
                        "quality_status",
                        "quality_reason",
                    )
                }
            )
            row["quality_sample"] = e.get("sample")
        elif e["kind"] == "drift":
            row.update(
                {
                    "drift_share": e.get("drift_share"),
                    "drift_alarm": e.get("alarm"),
                    "drift_status": e.get("status"),
                    "drift_reason": e.get("reason"),
                    "threshold_fit": e.get("threshold_fit"),
                    "prediction_drift": e.get("prediction_drift"),
                    "prediction_mean": e.get("prediction_mean"),
                    "drift_sample": e.get("sample"),
                }
            )
    for row in by_month.values():
        row["sample"] = row.get("quality_sample") or row.get("drift_sample")
    return [by_month[k] for k in sorted(by_month)]


def _alarm_word(status: str | None, alarm: bool | None) -> str:
    if status is None:
        return "no report"
    return "not judged" if status == NOT_JUDGED else "yes" if alarm else "no"


def alarm_rows(entries: list[dict]) -> list[dict]:
    """Per month: did the drift alarm fire, did the quality alarm fire, do they agree (``-`` when
    either was not judged). Newest month first, as in the index."""
    rows = []
    for r in reversed(trend_rows(entries)):
        drift = _alarm_word(r.get("drift_status"), r.get("drift_alarm"))
        quality = _alarm_word(r.get("quality_status"), r.get("quality_alarm"))
        both = drift in ("yes", "no") and quality in ("yes", "no")
        rows.append(
            {
                "month": r["period"],
                "drift_alarm": drift,
                "quality_alarm": quality,
                "agree": ("yes" if drift == quality else "no") if both else "-",
                "threshold_fit": r.get("threshold_fit"),
                "drift_reason": r.get("drift_reason") or "",
                "quality_reason": r.get("quality_reason") or "",
            }
        )
    return rows


def alarms_table(entries: list[dict]) -> str:
    """The index's per-month table of both alarms. Its rows carry no class (the reports table's
    rows do), and the month cell a ``data-month`` attribute."""
    rows = alarm_rows(entries)
    if not rows:
        return ""
    fit = {"held_out": "held out", "after_training": "after training", "saw_month": "saw the month"}
    body = "\n".join(
        f'<tr data-month="{html.escape(r["month"])}"><td>{html.escape(r["month"])}</td>'
        f'<td class="a-{r["drift_alarm"].replace(" ", "-")}">{html.escape(r["drift_alarm"])}</td>'
        f'<td class="a-{r["quality_alarm"].replace(" ", "-")}">{html.escape(r["quality_alarm"])}</td>'
        f'<td class="agree-{"yes" if r["agree"] == "yes" else "no" if r["agree"] == "no" else "na"}">'
        f"{html.escape(r['agree'])}</td>"
        f"<td>{html.escape(fit.get(r['threshold_fit'] or '', '-'))}</td>"
        f"<td>{html.escape(r['quality_reason'])}</td><td>{html.escape(r['drift_reason'])}</td></tr>"
        for r in rows
    )
    return f"""<h2>Alarms by month: drift vs quality</h2>
<p>Drift alarm: the month's inputs or p_late moved beyond thresholds fitted on windows that never saw
the month (training months: their held-out thresholds). Quality alarm: the month's out-of-sample ROC AUC
fell below, or its calibration error rose above, the range of the walk-forward backtest months before it
(production model's out-of-sample days, else the backtest's scores of the month). Agree: both judged and
both the same.</p>
<table id="alarms"><thead><tr><th>month</th><th>drift alarm</th><th>quality alarm</th><th>agree</th>
<th>drift thresholds</th><th>quality</th><th>drift</th></tr></thead>
<tbody>
{body}
</tbody></table>"""


def trend_png(rows: list[dict]) -> bytes:
    """Three panels by month: ROC AUC (out-of-sample solid; in-sample hollow grey on a shaded
    band; backtest dashed), drift share (alarm months red), late rate vs mean p_late."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 7.2), dpi=90)
    ax_auc, ax_drift, ax_rate = fig.subplots(3, 1, sharex=True)
    x = np.arange(len(rows))
    labels = [r["period"] for r in rows]

    def series(key):
        return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])

    for i, r in enumerate(rows):
        if r.get("sample") in (IN_SAMPLE, MIXED):
            for ax in (ax_auc, ax_drift, ax_rate):
                ax.axvspan(i - 0.5, i + 0.5, color="#f3d6d6" if r["sample"] == IN_SAMPLE else "#f7ebd6", lw=0)
    ax_auc.plot(x, series("roc_auc"), "o-", color="#1f77b4", label="ROC AUC, out of sample")
    ax_auc.plot(
        x,
        series("in_sample_roc_auc"),
        "o",
        mfc="none",
        color="#888",
        label="ROC AUC, IN-SAMPLE (trained/selected on: not a quality estimate)",
    )
    if np.isfinite(series("backtest_roc_auc")).any():
        ax_auc.plot(
            x, series("backtest_roc_auc"), "s--", color="#ff7f0e", ms=4, label="walk-forward backtest (out of sample)"
        )
    holdout = next((r["holdout_roc_auc"] for r in reversed(rows) if r.get("holdout_roc_auc") is not None), None)
    if holdout is not None:
        ax_auc.axhline(holdout, color="#1f77b4", ls=":", lw=1, label=f"holdout {holdout:.3f}")
    alarmed = [
        (i, r.get("roc_auc") if r.get("roc_auc") is not None else r.get("backtest_roc_auc"))
        for i, r in enumerate(rows)
        if r.get("quality_alarm")
    ]
    alarmed = [(i, v) for i, v in alarmed if v is not None]
    if alarmed:
        ax_auc.plot(
            [i for i, _ in alarmed],
            [v for _, v in alarmed],
            "X",
            color="#d62728",
            ms=11,
            label="quality alarm (outside the backtest range)",
        )
    ax_auc.set_ylabel("ROC AUC")
    ax_auc.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax_auc.set_title("shaded: in-sample months (red) / mixed (amber)", fontsize=8, loc="right")
    share = series("drift_share")
    colours = ["#d62728" if r.get("drift_alarm") else "#2ca02c" for r in rows]
    ax_drift.bar(x, np.nan_to_num(share), color=colours, width=0.6)
    for i, r in enumerate(rows):
        if r.get("drift_status") == NOT_JUDGED:
            ax_drift.text(i, 0.01, "not judged", ha="center", fontsize=7, rotation=90, va="bottom")
    ax_drift.set_ylabel("drift share\n(red = alarm)")
    ax_drift.set_ylim(0, max(0.3, float(np.nanmax(share)) * 1.2 if np.isfinite(share).any() else 0.3))
    ax_rate.plot(x, series("late_rate"), "o-", color="#9467bd", label="late rate (actual)")
    ax_rate.plot(x, series("prediction_mean"), "o--", color="#8c564b", label="mean p_late")
    ax_rate.set_ylabel("rate")
    ax_rate.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax_rate.set_xticks(x, labels, rotation=45, fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def md_trend(entries: list[dict]) -> str:
    """The trend chart as Dagster metadata markdown (a data URI: the UI needs no file server)."""
    rows = trend_rows(entries)
    if not rows:
        return "no reports yet"
    return (
        f"![trend]({data_uri(trend_png(rows))})\n\nShaded months are in-sample for the scoring model: "
        "their ROC AUC (hollow grey) is not a quality estimate."
    )


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _headline(e: dict) -> str:
    if e["kind"] == "drift":
        if e.get("status") == NOT_JUDGED:
            return f"drift not judged: {html.escape(e.get('reason', ''))}"
        text = (
            f"drift share {_fmt(e.get('drift_share'), 2)} ({e['drifted_features']} features past their "
            f"training range), p_late PSI {_fmt(e.get('prediction_drift'))}"
        )
        return (
            f"<b>ALARM</b>: {html.escape(e.get('reason', ''))}"
            if e.get("alarm")
            else text + ": within training variation"
        )
    parts = []
    if e.get("roc_auc") is not None:
        parts.append(f"<b>ROC AUC {e['roc_auc']:.3f}</b> out of sample ({e.get('out_of_sample_flights', 0):,} flights)")
    if e.get("in_sample_roc_auc") is not None:
        parts.append(
            f'<span class="in-sample">in-sample ROC AUC {e["in_sample_roc_auc"]:.3f} '
            f"({e.get('in_sample_flights', 0):,} flights the model was trained or selected on: "
            f"not a quality estimate)</span>"
        )
    if e.get("backtest_roc_auc") is not None:
        parts.append(f"walk-forward backtest ROC AUC {e['backtest_roc_auc']:.3f} (out of sample)")
    parts.append(f"late rate {_fmt(e.get('late_rate'))}")
    if e.get("quality_alarm"):
        parts.insert(0, f"<b>QUALITY ALARM</b>: {html.escape(e.get('quality_reason') or '')}")
    return "; ".join(parts)


def build_index(reports_dir: Path) -> Path:
    """reports/index.html: trend chart (embedded PNG), then every report newest period first,
    relative links (offline)."""
    entries = read_sidecars(reports_dir)
    entries.sort(key=lambda e: (e["period"], e["kind"]), reverse=True)
    rows = trend_rows(entries)
    chart = (
        (
            f'<img id="trend" alt="monthly trend: ROC AUC, drift share, late rate and mean p_late" '
            f'src="{data_uri(trend_png(rows))}">'
        )
        if rows
        else "<p>No reports yet.</p>"
    )
    body = "\n".join(
        f'<tr class="{html.escape(e.get("sample") or "")}"><td>{html.escape(e["period"])}</td>'
        f"<td>{html.escape(e['kind'])}</td><td>{html.escape(sample_label(e.get('sample') or ''))}</td>"
        f"<td>{html.escape(e['model_version'])}</td><td>{_headline(e)}</td>"
        + (
            f'<td><a href="{html.escape(e["html"])}">{html.escape(Path(e["html"]).name)}</a></td></tr>'
            if e.get("html")
            else "<td>-</td></tr>"
        )
        for e in entries
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flight delay model: monitoring reports</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}
tr.in_sample td{{background:#fbeaea}} tr.mixed td{{background:#fdf5e6}} .in-sample{{color:#a00}} img{{max-width:100%}}
td.a-yes{{background:#f8d7da;font-weight:600}} td.agree-no{{background:#fff3cd;font-weight:600}}</style>
</head><body>
<h1>Flight delay model: monitoring reports</h1>
{chart}
<p>{len(entries)} reports, newest first. <b>Quality</b> compares scores with actual arrivals (late = 15+
minutes, cancelled or diverted); its headline is <b>out of sample</b> only: days before the model's
test window were used to train or select it, so their figures are marked <span class="in-sample">in-sample</span>
and never raise or silence an alert. <b>Drift</b> compares each month with the 42 days before it (PSI
per feature; thresholds = 1.5 x the largest month-to-month move seen in training, and each training month
is judged by thresholds fitted without it; calendar features excluded). Open offline; no network needed.</p>
{alarms_table(entries)}
<h2>Reports</h2>
<table id="reports"><thead><tr><th>period</th><th>report</th><th>sample</th><th>model version</th><th>headline</th><th>file</th></tr></thead>
<tbody>
{body}
</tbody></table>
</body></html>
"""
    index = reports_dir / "index.html"
    reports_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(index, page)
    return index


# --- Evidently workspace -----------------------------------------------------------------------
def _dashboard():
    """Panels for the series the index charts: drift share, p_late drift and mean, late rate,
    out-of-sample ROC AUC (and the in-sample one on its own, labelled panel)."""
    from evidently.sdk.models import DashboardModel, DashboardTabModel, PanelMetric
    from evidently.sdk.panels import line_plot_panel

    panels = [
        line_plot_panel(
            "ROC AUC, out of sample",
            [PanelMetric(legend="out of sample", metric="RocAuc", tags=["quality", OUT_OF_SAMPLE])],
            size="half",
        ),
        line_plot_panel(
            "ROC AUC, IN-SAMPLE (trained/selected on: not a quality estimate)",
            [PanelMetric(legend="in-sample", metric="RocAuc", tags=["quality", IN_SAMPLE])],
            size="half",
        ),
        line_plot_panel(
            "Drift share (features past their training range)",
            [
                PanelMetric(
                    legend="share", metric="DriftedColumnsCount", tags=["drift"], metric_labels={"value_type": "share"}
                )
            ],
            size="half",
        ),
        line_plot_panel(
            "p_late PSI vs trailing 6 weeks",
            [PanelMetric(legend="p_late", metric="ValueDrift", tags=["drift"], metric_labels={"column": PREDICTION})],
            size="half",
        ),
        line_plot_panel(
            "Late rate and mean p_late",
            [
                PanelMetric(legend="late rate", metric="MeanValue", tags=["quality"], metric_labels={"column": "late"}),
                PanelMetric(
                    legend="mean p_late", metric="MeanValue", tags=["drift"], metric_labels={"column": PREDICTION}
                ),
            ],
        ),
    ]
    return DashboardModel(tabs=[DashboardTabModel(title="Monitoring", panels=[p.id for p in panels])], panels=panels)


_WORKSPACES: ContextVar[dict | None] = ContextVar("evidently_workspaces", default=None)


@contextmanager
def workspace_session() -> Iterator[None]:
    """Reuse one open Evidently workspace for every report stored inside the block. Opening one
    parses every snapshot already stored (0.13 s each: 3 s with 23 months stored, measured
    2026-12-02), which was paid again for each of a year's 24 reports."""
    token = _WORKSPACES.set({})
    try:
        yield
    finally:
        _WORKSPACES.reset(token)


def _workspace(path: str):
    from evidently.ui.workspace import Workspace

    opened = _WORKSPACES.get()
    if opened is None:
        return Workspace.create(path)
    if path not in opened:
        opened[path] = Workspace.create(path)
    return opened[path]


def workspace_project(settings: Settings) -> str:
    """The monitoring project's id, created with its dashboard the first time (and given the
    current panels when it has older ones)."""
    ws = _workspace(str(workspace_dir(settings)))
    projects = ws.search_project(PROJECT)
    project = projects[0] if projects else ws.create_project(PROJECT, description="Flight delay model monitoring")
    dashboard = _dashboard()
    if not {p.title for p in dashboard.panels} <= {p.title for p in ws.get_dashboard(project.id).panels}:
        ws.save_dashboard(project.id, dashboard)  # a new project, or one from before these panels
    return str(project.id)


def workspace_lock(workspace: str):
    Path(workspace).mkdir(parents=True, exist_ok=True)
    return exclusive(Path(workspace) / ".write.lock")


def add_to_workspace(workspace: str, project_id: str, snapshot, name: str) -> str:
    """Store ``snapshot`` as a new run named ``name``; returns its id. ~2-3 s for a drift month,
    mostly Evidently's JSON encoding. Under a lock: opening a workspace reads every stored run, and
    would read a run another process is halfway through writing."""
    with workspace_lock(workspace):
        ref = _workspace(workspace).add_run(project_id, snapshot, name=name)
    return str(getattr(ref, "id", ref))


def record_run(settings: Settings, project_id: str, name: str, run_id: str) -> str:
    """Make ``run_id`` the run of report ``name`` (runs.json), deleting the run it replaces. One
    writer at a time: this reads, changes and rewrites runs.json."""
    ws = _workspace(str(workspace_dir(settings)))
    runs_file = workspace_dir(settings) / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else {}
    if name in runs and runs[name] != run_id:
        try:
            with workspace_lock(str(workspace_dir(settings))):
                ws.delete_run(project_id, runs[name])
        except Exception:  # already gone: nothing to replace
            pass
    runs[name] = run_id
    write_text_atomic(runs_file, json.dumps(runs, indent=2, sort_keys=True))
    return run_id


def store_in_workspace(settings: Settings, snapshot, name: str) -> str:
    """Keep one run per report name in the Evidently workspace (a re-run replaces it); the
    snapshot's timestamp is the start of the period it covers, so the dashboard's time axis is the
    data's months, not the day the report ran."""
    project_id = workspace_project(settings)
    run_id = add_to_workspace(str(workspace_dir(settings)), project_id, snapshot, name)
    return record_run(settings, project_id, name, run_id)


# --- alerts and the catalog --------------------------------------------------------------------
def append_alert(settings: Settings, alert: dict) -> dict:
    alert = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **alert}
    append_lines(alerts_path(settings), [json.dumps(alert, sort_keys=True, default=str)])
    return alert


def read_alerts(settings: Settings) -> list[dict]:
    path = alerts_path(settings)
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def drift_breaches(entries: list[dict]) -> dict[str, dict]:
    """Judged drift months that alarm, with what moved."""
    return {
        e["period"]: {
            "model_version": e["model_version"],
            "sample": e.get("sample"),
            "drift_share": round(e["drift_share"], 4),
            "threshold": e["threshold"],
            "drifted_features": e["drifted_feature_names"],
            "prediction_drift": None if e.get("prediction_drift") is None else round(e["prediction_drift"], 4),
            "prediction_drifted": e.get("prediction_drifted", False),
            "drifted": ([PREDICTION] if e.get("prediction_drifted") else []) + e["drifted_feature_names"],
            "reason": e.get("reason", ""),
        }
        for e in entries
        if e["kind"] == "drift" and e.get("alarm")
    }


def quality_breaches(entries: list[dict]) -> tuple[dict[str, dict], int]:
    """Months whose *out-of-sample* ROC AUC fell more than the threshold below the holdout.
    In-sample figures are never considered. Returns (breaches, months checked)."""
    checked = [
        e
        for e in entries
        if e["kind"] == "quality"
        and e.get("roc_auc") is not None
        and e.get("auc_drop") is not None
        and e.get("out_of_sample_flights", 0) >= MIN_OUT_OF_SAMPLE_FLIGHTS
    ]
    return (
        {
            e["period"]: {
                "model_version": e["model_version"],
                "sample": e["sample"],
                "roc_auc_out_of_sample": round(e["roc_auc"], 4),
                "auc_drop": round(e["auc_drop"], 4),
                "threshold": e["threshold"],
                "out_of_sample_flights": e["out_of_sample_flights"],
            }
            for e in checked
            if e["auc_drop"] > e["threshold"]
        },
        len(checked),
    )


def catalog_views(settings: Settings):
    """The ``monitoring`` schema of the analyst catalog."""
    from resources.catalog.publish import ExternalView, has_files, sql_str

    drift = str(monitoring_dir(settings) / "daily_drift" / "*.parquet")
    quality = str(monitoring_dir(settings) / "daily_quality" / "*.parquet")
    labelled = (
        f"left join read_parquet({sql_str(quality)}, union_by_name = true) q using (metric_date, model_version)"
        if has_files(quality)
        else "left join (select null::date as metric_date, null::varchar as model_version, null::bigint as labelled_flights, "
        "null::double as roc_auc, null::double as late_rate) q using (metric_date, model_version)"
    )
    return [
        ExternalView(
            "monitoring",
            "daily_metrics",
            drift,
            "One row per scored day: drift vs the 42 days before its month (share of features past "
            "their daily threshold, p_late PSI), and once labelled, ROC AUC and late rate. "
            "sample = 'in_sample' marks days the model was trained or selected on: their ROC AUC "
            "is not a quality estimate.",
            query=f"select d.*, q.labelled_flights, q.roc_auc, q.late_rate "
            f"from read_parquet({sql_str(drift)}, union_by_name = true) d {labelled}",
        ),
        ExternalView(
            "monitoring",
            "alerts",
            str(alerts_path(settings)) if alerts_path(settings).exists() else drift,
            "Append-only alert log: failed monitoring checks and failed runs.",
            query=f"select * from read_json_auto({sql_str(str(alerts_path(settings)))})"
            if alerts_path(settings).exists()
            else "select null::varchar as at, null::varchar as kind, null::varchar as check, "
            "null::varchar as run_id where false",
        ),
    ]
