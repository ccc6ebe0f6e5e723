"""Monitoring's derived table in the analyst catalog: the daily drift and quality rows joined.
The rows themselves and the alert log are warehouse lake tables, published as they are."""

from __future__ import annotations

from resources.catalog.publish import ExternalView
from resources.core.settings import Settings
from resources.monitoring.paths import DRIFT_ROWS, MONITORING_SCHEMA, QUALITY_ROWS


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
    """The derived tables of the ``monitoring`` schema of the analyst catalog."""
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
        )
    ]
