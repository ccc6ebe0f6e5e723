"""Monitoring's views in the analyst catalog: the daily metric rows and the alert log."""

from __future__ import annotations

from resources.catalog.publish import ExternalView, has_files, sql_str
from resources.core.settings import Settings
from resources.monitoring.paths import alerts_path, monitoring_dir


def catalog_views(settings: Settings):
    """The ``monitoring`` schema of the analyst catalog."""
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
