"""monitoring/daily_metrics: each scored day's drift row, and its quality row once labelled,
computed as the day arrives (resources/monitoring/daily.py). The monthly reports wait for the
month's close."""

from datetime import date

import dagster as dg

from assets.automation import downstream
from assets.common import SINGLE_RUN, per_partition, run_row_count
from assets.ml.keys import FEATURES_KEY, SCORES_KEY
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.features.catalog import DATA_SCIENCE
from resources.ml.registry.storage import Registry
from resources.monitoring.daily import monitor_days
from resources.raw.zone import days_in

DAILY_METRICS_KEY = dg.AssetKey(["monitoring", "daily_metrics"])
SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("metric_date", "date", "The scored day."),
        dg.TableColumn("model_version", "varchar", "The model that scored it."),
        dg.TableColumn("flights_scored", "bigint", "Flights scored that day."),
        dg.TableColumn(
            "drift_share",
            "double",
            "Share of judged features past their daily threshold vs the 42 days before the month.",
        ),
        dg.TableColumn("drifted_features", "bigint", "How many features were past it."),
        dg.TableColumn("prediction_mean", "double", "Mean p_late."),
        dg.TableColumn("prediction_drift", "double", "PSI of p_late vs the reference."),
        dg.TableColumn("prediction_drifted", "boolean", "p_late past its daily threshold."),
        dg.TableColumn("sample", "varchar", "in_sample: the model was trained or selected on this day."),
        dg.TableColumn("labelled_flights", "bigint", "Flights with an actual arrival (quality rows)."),
        dg.TableColumn(
            "roc_auc", "double", "ROC AUC of the day (null with one class); in-sample days are labelled so."
        ),
        dg.TableColumn("late_rate", "double", "Share of flights 15+ minutes late."),
    ]
)


class DailyMonitoringConfig(dg.Config):
    as_of: str = ""  # the clock for "have the actuals arrived?"; empty = today


def build_daily_monitoring(daily: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=DAILY_METRICS_KEY,
        group_name="monitoring",
        kinds={"polars", "parquet"},
        owners=[DATA_SCIENCE],
        partitions_def=daily,
        backfill_policy=SINGLE_RUN,
        deps=[SCORES_KEY, FEATURES_KEY],
        automation_condition=downstream(),
        metadata={"dagster/column_schema": SCHEMA},
        description="A day's monitoring rows as soon as it is scored: drift of the features and p_late "
        "against the 42 days before its month, and ROC AUC once the actuals have arrived "
        "(monitoring.daily_metrics in the catalog). No Evidently run: the monthly reports come at the "
        "month's close.",
    )
    def daily_metrics(context: dg.AssetExecutionContext, config: DailyMonitoringConfig, lakehouse: LakehouseResource):
        settings, window = lakehouse.settings(), context.partition_time_window
        as_of = date.fromisoformat(config.as_of) if config.as_of else date.today()
        figures = monitor_days(
            settings, Registry(settings), days_in(window.start.date(), window.end.date()), as_of, log=context.log.info
        )
        yield dg.MaterializeResult(metadata={**run_row_count(len(figures), len(figures)), "days_scored": len(figures)})
        yield from per_partition(
            DAILY_METRICS_KEY,
            {
                d.isoformat(): {"dagster/row_count": 1, **{k: v for k, v in f.items() if v is not None}}
                for d, f in figures.items()
            },
        )

    return daily_metrics
