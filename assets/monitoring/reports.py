"""Monitoring assets: monthly drift and quality (Evidently HTML + sidecars), daily metric rows,
checks with thresholds from the model's registry entry, and the sensors that record alerts.
Logic lives in resources/monitoring/ (monthly.py, drift.py, quality.py and the modules they use); these are thin wrappers."""

import json
from datetime import date

import dagster as dg
import polars as pl

from assets.automation import month_closed
from assets.common import SINGLE_RUN, frame_table, location
from assets.ml.model import FEATURES_KEY, SCORES_KEY
from resources.core.lakehouse_resource import LakehouseResource
from resources.core.settings import Settings
from resources.ml.features.catalog import DATA_SCIENCE
from resources.ml.registry.storage import Registry
from resources.monitoring.alerts import append_alert, drift_breaches, quality_breaches
from resources.monitoring.charts import md_trend
from resources.monitoring.index_page import alarm_rows, build_index
from resources.monitoring.monthly import monitor_drift_month, monitor_quality_month
from resources.monitoring.paths import month_key
from resources.monitoring.quality import quality_alarm_breaches
from resources.monitoring.report_files import read_sidecars
from resources.monitoring.report_jobs import ReportWriter
from resources.monitoring.samples import sample_label
from resources.monitoring.workspace import workspace_session

DRIFT_KEY = dg.AssetKey(["monitoring", "drift_report"])
QUALITY_KEY = dg.AssetKey(["monitoring", "quality_report"])
KINDS = {"evidently", "parquet"}


class MonitoringConfig(dg.Config):
    as_of: str = ""  # the clock for "have the actuals arrived?"; empty = today


def _months(context) -> list[tuple[date, date]]:
    window = context.partition_time_window
    out = []
    for key in context.partition_keys:
        start = date.fromisoformat(key)
        end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        out.append((start, min(end, window.end.date())))
    return out


DRIFT_COLUMNS = ["drift_share", "drifted_features", "prediction_drift", "alarm", "status", "threshold_fit", "reason"]
QUALITY_COLUMNS = [
    "roc_auc",
    "calibration_error",
    "out_of_sample_flights",
    "in_sample_roc_auc",
    "backtest_roc_auc",
    "late_rate",
    "auc_drop",
    "quality_alarm",
    "quality_status",
    "quality_reason",
]


def _table(results: dict[str, dict], columns: list[str]) -> dg.MetadataValue:
    rows = [
        {
            "month": m,
            "sample": sample_label(r.get("sample") or ""),
            "model_version": r["model_version"],
            **{c: (", ".join(r[c]) if isinstance(r.get(c), list) else r.get(c)) for c in columns},
            "evidently_skipped": bool(r.get("evidently_skipped")),
        }
        for m, r in sorted(results.items())
    ]
    return frame_table(pl.DataFrame(rows, infer_schema_length=None))


def _summary_metadata(settings: Settings, results: dict[str, dict], columns: list[str]) -> dict:
    index = build_index(settings.reports_dir)
    last = results[max(results)] if results else {}
    entries = read_sidecars(settings.reports_dir)
    alarms = [{k: r[k] for k in ("month", "drift_alarm", "quality_alarm", "agree")} for r in alarm_rows(entries)]
    return {
        "months": len(results),
        "by_month": _table(results, columns),
        **({"alarms_by_month": frame_table(pl.DataFrame(alarms))} if alarms else {}),
        "trend": dg.MetadataValue.md(md_trend(entries)),
        **location(settings, index, "index"),  # the path, and a link `make dev` serves
        **location(settings, settings.reports_dir / last["html"] if last.get("html") else index, "report"),
        "model_version": last.get("model_version", ""),
        "evidently_runs_skipped": sum(bool(r.get("evidently_skipped")) for r in results.values()),
    }


def build_monitoring(monthly: dg.PartitionsDefinition):
    @dg.asset(
        key=DRIFT_KEY,
        group_name="monitoring",
        kinds=KINDS,
        owners=[DATA_SCIENCE],
        partitions_def=monthly,
        backfill_policy=SINGLE_RUN,
        deps=[SCORES_KEY, FEATURES_KEY],
        automation_condition=month_closed(),
        description="Monthly drift of the features and of p_late against the 42 days before the month "
        "(PSI, thresholds calibrated on the training period and stored with the model), an Evidently "
        "HTML when its inputs changed, and a drift row per day (monitoring.daily_metrics).",
    )
    def drift_report_asset(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings, registry = lakehouse.settings(), Registry(lakehouse.settings())
        results = {}
        with workspace_session(), ReportWriter(settings) as writer:
            for start, end in _months(context):
                result = monitor_drift_month(settings, registry, start, end, log=context.log.info, writer=writer)
                if result is not None:
                    results[month_key(start)] = result
            results.update({period: r for (_, period), r in writer.finish().items()})
        return dg.MaterializeResult(
            metadata={
                **_summary_metadata(settings, results, DRIFT_COLUMNS),
                "alarm_months": ", ".join(m for m, r in sorted(results.items()) if r.get("alarm")) or "none",
            }
        )

    @dg.asset(
        key=QUALITY_KEY,
        group_name="monitoring",
        kinds=KINDS,
        owners=[DATA_SCIENCE],
        partitions_def=monthly,
        backfill_policy=SINGLE_RUN,
        output_required=False,
        automation_condition=month_closed(),
        deps=[SCORES_KEY, dg.AssetKey(["curated", "fct_flights"])],
        description="Monthly classification quality of p_late against actual arrivals, once a month's "
        "actuals have arrived (one day after each flight date). The headline ROC AUC uses only days "
        "out of sample for the scoring model (on or after its test_start); in-sample days are labelled.",
    )
    def quality_report_asset(context: dg.AssetExecutionContext, config: MonitoringConfig, lakehouse: LakehouseResource):
        settings, registry = lakehouse.settings(), Registry(lakehouse.settings())
        as_of = date.fromisoformat(config.as_of) if config.as_of else date.today()
        results, waiting = {}, {}
        with workspace_session(), ReportWriter(settings) as writer:
            for start, end in _months(context):
                result = monitor_quality_month(
                    settings, registry, start, end, as_of, log=context.log.info, writer=writer
                )
                if result is not None and "waiting" in result:
                    waiting[month_key(start)] = result["waiting"]
                    context.log.info(f"{month_key(start)}: {result['waiting']}; quality not computed")
                elif result is not None:
                    results[month_key(start)] = result
            results.update({period: r for (_, period), r in writer.finish().items()})
        if not results:
            build_index(settings.reports_dir)
            context.log.info(f"no month with arrived actuals: {waiting}")
            return  # nothing materialized: quality is not computed before the labels exist
        yield dg.MaterializeResult(
            metadata={
                **_summary_metadata(settings, results, QUALITY_COLUMNS),
                "waiting_for_actuals": json.dumps(waiting),
                "quality_alarm_months": ", ".join(m for m, r in sorted(results.items()) if r.get("quality_alarm"))
                or "none",
                "holdout_roc_auc": results[max(results)].get("holdout_roc_auc"),
            }
        )

    @dg.asset_check(
        asset=DRIFT_KEY,
        name="drift_share_within_threshold",
        description="Warns when a month's p_late or any judged feature moved further from the 42 "
        "days before it than in any training month (by half again), or the drifted share passes "
        "the registry's drift_share_warn. Names what moved.",
    )
    def drift_check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        entries = read_sidecars(lakehouse.settings().reports_dir)
        bad = drift_breaches(entries)
        judged = [e for e in entries if e["kind"] == "drift" and e.get("status") == "judged"]
        return _check_result(
            bad, len(judged), [e["period"] for e in entries if e["kind"] == "drift" and e.get("status") != "judged"]
        )

    @dg.asset_check(
        asset=QUALITY_KEY,
        name="auc_drop_within_threshold",
        description="Warns when a month's OUT-OF-SAMPLE ROC AUC falls below the holdout ROC AUC by "
        "more than the threshold in the model's registry entry. In-sample months never alert.",
    )
    def quality_check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        entries = read_sidecars(lakehouse.settings().reports_dir)
        bad, checked = quality_breaches(entries)
        return _check_result(
            bad, checked, [e["period"] for e in entries if e["kind"] == "quality" and e.get("roc_auc") is None]
        )

    @dg.asset_check(
        asset=QUALITY_KEY,
        name="quality_within_backtest_range",
        description="Warns when a month's out-of-sample ROC AUC falls below, or its calibration error "
        "rises above, the range of the walk-forward backtest months before it (the production model's "
        "out-of-sample days; for months it was trained or selected on, the backtest's own scores). "
        "Details name the metric, the range and the months it came from.",
    )
    def quality_range_check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        bad, checked, not_checked = quality_alarm_breaches(read_sidecars(lakehouse.settings().reports_dir))
        return _check_result(bad, checked, not_checked)

    return [drift_report_asset, quality_report_asset], [drift_check, quality_check, quality_range_check]


def _check_result(bad: dict[str, dict], checked: int, not_checked: list[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not bad,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "months_checked": checked,
            "months_over_threshold": len(bad),
            "months_not_checked": ", ".join(sorted(not_checked)) or "none",
            "details": json.dumps(bad, sort_keys=True),
        },
    )


def build_alert_sensors(check_keys: list[dg.AssetCheckKey], monitored_jobs: list):
    @dg.sensor(
        name="monitoring_alerts",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records an alert (lakehouse monitoring/alerts.jsonl) for each failed monitoring check.",
    )
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
            append_alert(
                settings,
                {
                    "kind": "check_failed",
                    "check": key.to_user_string(),
                    "run_id": record.run_id,
                    "severity": evaluation.severity.value,
                    **{k: v.value for k, v in evaluation.metadata.items()},
                },
            )
            alerts += 1
        context.update_cursor(json.dumps(seen))
        return dg.SkipReason(f"{alerts} alert(s) recorded") if alerts else dg.SkipReason("no new failed checks")

    @dg.run_failure_sensor(
        name="run_failure_alerts", monitored_jobs=monitored_jobs, default_status=dg.DefaultSensorStatus.RUNNING
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext, lakehouse: LakehouseResource):
        append_alert(
            lakehouse.settings(),
            {
                "kind": "run_failed",
                "job": context.dagster_run.job_name,
                "run_id": context.dagster_run.run_id,
                "error": context.failure_event.message,
            },
        )

    return [check_alerts, run_failure_alerts]
