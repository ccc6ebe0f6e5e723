"""Monitoring assets: monthly Evidently drift and quality reports, daily metric rows, checks
with thresholds from the model's registry entry, and the sensors that record alerts."""

import json
from collections import Counter
from datetime import date

import dagster as dg
import polars as pl
from sklearn.metrics import roc_auc_score

from assets.common import SINGLE_RUN
from assets.ml import FEATURES_KEY, SCORES_KEY
from resources.lakehouse_resource import LakehouseResource
from resources.ml_features import DATA_SCIENCE
from resources.ml_registry import Registry
from resources.ml_store import features_dir, load_labels, read_days, scores_dir
from resources.monitoring import (
    append_alert, build_index, daily_drift_rows, daily_quality_rows, drift_report, drift_summary,
    missing_actuals, monitoring_dir, month_key, quality_report, store_in_workspace, write_report,
)
from resources.parquet_io import write_parquet_atomic
from resources.settings import Settings

DRIFT_KEY = dg.AssetKey(["monitoring", "drift_report"])
QUALITY_KEY = dg.AssetKey(["monitoring", "quality_report"])
KINDS = {"evidently", "parquet"}


class MonitoringConfig(dg.Config):
    as_of: str = ""  # the clock for "have the actuals arrived?"; empty = today


def _months(context) -> list[tuple[date, date]]:
    window = context.partition_time_window
    keys = context.partition_keys
    out = []
    for key in keys:
        start = date.fromisoformat(key)
        end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        out.append((start, min(end, window.end.date())))
    return out


def _scored_month(settings: Settings, start: date, end: date) -> tuple[pl.DataFrame, str] | None:
    scores = read_days(scores_dir(settings), start, end)
    if scores.height == 0:
        return None
    version = Counter(scores["model_version"].to_list()).most_common(1)[0][0]
    features = read_days(features_dir(settings), start, end)
    current = features.join(scores.filter(pl.col("model_version") == version).select("flight_id", "p_late"),
                            on="flight_id", how="inner")
    return current, version


def _month_file(settings: Settings, kind: str, month: str):
    return monitoring_dir(settings) / kind / f"month={month}.parquet"


def build_monitoring(monthly: dg.PartitionsDefinition):
    @dg.asset(key=DRIFT_KEY, group_name="monitoring", kinds=KINDS, owners=[DATA_SCIENCE],
              partitions_def=monthly, backfill_policy=SINGLE_RUN, deps=[SCORES_KEY, FEATURES_KEY],
              description="Monthly Evidently data-drift report of the features and of p_late against the "
              "production model's training reference, plus a drift row per day (monitoring.daily_metrics).")
    def drift_report_asset(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings = lakehouse.settings()
        registry = Registry(settings)
        results = {}
        for start, end in _months(context):
            month = month_key(start)
            scored = _scored_month(settings, start, end)
            if scored is None:
                context.log.warning(f"{month}: no scores yet, nothing to monitor")
                continue
            current, version = scored
            reference = registry.load_reference(version)
            threshold = registry.record(version)["monitoring"]["drift_share_warn"]
            snapshot = drift_report(reference, current, threshold)
            summary = drift_summary(snapshot)
            meta = {"model_version": version, "drift_share": summary.drift_share,
                    "drifted_features": len(summary.drifted), "drifted_feature_names": summary.drifted,
                    "prediction_drift": summary.prediction_drift, "flights": current.height,
                    "threshold": threshold}
            path = write_report(snapshot, settings.reports_dir, "drift", month, meta)
            store_in_workspace(settings, snapshot, f"drift {month}")
            write_parquet_atomic(daily_drift_rows(reference, current, version, threshold),
                                 _month_file(settings, "daily_drift", month))
            results[month] = {**meta, "html": str(path)}
        index = build_index(settings.reports_dir)
        last = results[max(results)] if results else {}
        return dg.MaterializeResult(metadata={
            "months": len(results),
            "drift_share_by_month": {m: round(r["drift_share"], 3) for m, r in results.items()},
            "report": dg.MetadataValue.path(last.get("html", str(index))),
            "index": dg.MetadataValue.path(str(index)),
            "model_version": last.get("model_version", ""),
            "max_drift_share": max((r["drift_share"] for r in results.values()), default=0.0),
        })

    @dg.asset(key=QUALITY_KEY, group_name="monitoring", kinds=KINDS, owners=[DATA_SCIENCE],
              partitions_def=monthly, backfill_policy=SINGLE_RUN, output_required=False,
              deps=[SCORES_KEY, dg.AssetKey(["curated", "fct_flights"])],
              description="Monthly Evidently classification-quality report (ROC AUC, precision/recall, "
              "calibration) of p_late against actual arrivals, computed only once a month's actuals "
              "have arrived (one day after each flight date).")
    def quality_report_asset(context: dg.AssetExecutionContext, config: MonitoringConfig,
                             lakehouse: LakehouseResource):
        settings = lakehouse.settings()
        registry = Registry(settings)
        as_of = date.fromisoformat(config.as_of) if config.as_of else date.today()
        results, waiting = {}, {}
        for start, end in _months(context):
            month = month_key(start)
            scored = _scored_month(settings, start, end)
            if scored is None:
                continue
            current, version = scored
            missing = missing_actuals(sorted(set(current["flight_date"].to_list())), as_of)
            if missing:
                waiting[month] = f"actuals not yet arrived for {len(missing)} day(s) from {missing[0]} (as of {as_of})"
                context.log.info(f"{month}: {waiting[month]}; quality not computed")
                continue
            current = current.join(load_labels(settings, start, end), on="flight_id", how="inner")
            reference = registry.load_reference(version)
            snapshot = quality_report(reference, current)
            daily = daily_quality_rows(current, version)
            auc = float(roc_auc_score(current["is_late"].to_numpy(), current["p_late"].to_numpy()))
            record = registry.record(version)
            holdout = record["test"]["roc_auc"]
            meta = {"model_version": version, "roc_auc": auc, "late_rate": float(current["is_late"].mean()),
                    "labelled_flights": current.height, "holdout_roc_auc": holdout,
                    "auc_drop": holdout - auc, "threshold": record["monitoring"]["auc_drop_warn"]}
            path = write_report(snapshot, settings.reports_dir, "quality", month, meta)
            store_in_workspace(settings, snapshot, f"quality {month}")
            write_parquet_atomic(daily, _month_file(settings, "daily_quality", month))
            results[month] = {**meta, "html": str(path)}
        build_index(settings.reports_dir)
        if not results:
            context.log.info(f"no month with arrived actuals: {waiting}")
            return  # nothing materialized: quality is not computed before the labels exist
        last = results[max(results)]
        yield dg.MaterializeResult(metadata={
            "months": len(results), "waiting_for_actuals": json.dumps(waiting),
            "roc_auc_by_month": {m: round(r["roc_auc"], 4) for m, r in results.items()},
            "report": dg.MetadataValue.path(last["html"]), "model_version": last["model_version"],
            "holdout_roc_auc": last["holdout_roc_auc"],
        })

    @dg.asset_check(asset=DRIFT_KEY, name="drift_share_within_threshold",
                    description="Warns when a month's share of drifted columns passes the threshold in "
                    "the model's registry entry.")
    def drift_check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        return _threshold_check(lakehouse.settings(), "drift", "drift_share", lambda m: m["drift_share"] > m["threshold"])

    @dg.asset_check(asset=QUALITY_KEY, name="auc_drop_within_threshold",
                    description="Warns when a month's ROC AUC falls below the holdout ROC AUC by more "
                    "than the threshold in the model's registry entry.")
    def quality_check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        return _threshold_check(lakehouse.settings(), "quality", "auc_drop", lambda m: m["auc_drop"] > m["threshold"])

    return [drift_report_asset, quality_report_asset], [drift_check, quality_check]


def _threshold_check(settings: Settings, kind: str, measure: str, breached) -> dg.AssetCheckResult:
    sidecars = sorted((settings.reports_dir / kind).glob(f"{kind}_*.json"))
    months = [json.loads(p.read_text()) for p in sidecars]
    bad = [m for m in months if breached(m)]
    details = {m["period"]: {"model_version": m["model_version"], measure: round(m[measure], 4),
                             "threshold": m["threshold"],
                             **({"drifted_features": m["drifted_feature_names"]} if kind == "drift" else {})}
               for m in bad}
    return dg.AssetCheckResult(
        passed=not bad, severity=dg.AssetCheckSeverity.WARN,
        metadata={"months_checked": len(months), "months_over_threshold": len(bad),
                  "details": json.dumps(details, sort_keys=True)},
    )


def build_alert_sensors(check_keys: list[dg.AssetCheckKey], monitored_jobs: list):
    @dg.sensor(name="monitoring_alerts", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Records an alert (lakehouse monitoring/alerts.jsonl) for each failed monitoring check.")
    def check_alerts(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
        seen = json.loads(context.cursor) if context.cursor else {}
        settings = lakehouse.settings()
        storage = context.instance.event_log_storage
        records = storage.get_latest_asset_check_execution_by_key(check_keys)
        alerts = 0
        for key, record in records.items():
            if record is None or record.id <= seen.get(key.to_user_string(), 0):
                continue
            seen[key.to_user_string()] = record.id
            evaluation = record.event.asset_check_evaluation if record.event else None
            if evaluation is None or evaluation.passed:
                continue
            append_alert(settings, {
                "kind": "check_failed", "check": key.to_user_string(), "run_id": record.run_id,
                "severity": evaluation.severity.value,
                **{k: v.value for k, v in evaluation.metadata.items()},
            })
            alerts += 1
        context.update_cursor(json.dumps(seen))
        return dg.SkipReason(f"{alerts} alert(s) recorded") if alerts else dg.SkipReason("no new failed checks")

    @dg.run_failure_sensor(name="run_failure_alerts", monitored_jobs=monitored_jobs,
                           default_status=dg.DefaultSensorStatus.RUNNING)
    def run_failure_alerts(context: dg.RunFailureSensorContext, lakehouse: LakehouseResource):
        append_alert(lakehouse.settings(), {"kind": "run_failed", "job": context.dagster_run.job_name,
                                "run_id": context.dagster_run.run_id,
                                "error": context.failure_event.message})

    return [check_alerts, run_failure_alerts]
