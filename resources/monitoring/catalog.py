"""Monitoring's tables in the analyst catalog besides its lake tables (published as they are):
the daily drift and quality rows joined, and the alert log."""

from __future__ import annotations

from resources.catalog.views import ExternalView
from resources.core.duckdb_connect import sql_str
from resources.core.settings import Settings
from resources.monitoring.paths import DRIFT_ROWS, MONITORING_SCHEMA, QUALITY_ROWS, alerts_path


def daily_metrics_query(copied: set[tuple[str, str]]) -> str | None:
    """A day's drift row with its quality row once labelled; None before the first drift row."""
    if (MONITORING_SCHEMA, DRIFT_ROWS) not in copied:
        return None
    quality = (
        f"{MONITORING_SCHEMA}.{QUALITY_ROWS}"
        if (MONITORING_SCHEMA, QUALITY_ROWS) in copied
        else "(select null::date as metric_date, null::varchar as model_version, null::bigint as labelled_flights, "
        "null::double as roc_auc, null::double as late_rate)"
    )
    return (
        "select d.*, q.labelled_flights, q.roc_auc, q.late_rate "
        f"from {MONITORING_SCHEMA}.{DRIFT_ROWS} d left join {quality} q using (metric_date, model_version) "
        "order by metric_date, model_version"
    )


def catalog_views(settings: Settings):
    """The ``monitoring`` schema's tables of the analyst catalog that are not lake tables."""
    alerts = alerts_path(settings)
    return [
        ExternalView(
            MONITORING_SCHEMA,
            "daily_metrics",
            None,
            "One row per scored day: drift vs the 42 days before its month (share of features past "
            "their daily threshold, p_late PSI), and once labelled, ROC AUC and late rate. "
            "sample = 'in_sample' marks days the model was trained or selected on: their ROC AUC "
            "is not a quality estimate.",
            query=daily_metrics_query,
        ),
        ExternalView(
            MONITORING_SCHEMA,
            "alerts",
            None,
            "Append-only alert log: failed monitoring checks and failed runs.",
            query=f"select * from read_json_auto({sql_str(str(alerts))})"
            if alerts.exists()
            else "select null::varchar as at, null::varchar as kind, null::varchar as check, "
            "null::varchar as run_id where false",
        ),
    ]
