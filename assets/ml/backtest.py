"""The walk-forward backtest as a monthly-partitioned asset (one run backfills every month and
records each month's own figures)."""

from datetime import date

import dagster as dg
import polars as pl

from assets.automation import month_closed
from assets.common import SINGLE_RUN, frame_table, table_schema
from assets.ml.model import CANDIDATE_KEY, FEATURES_KEY, ML_KINDS
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.features.catalog import DATA_SCIENCE
from resources.ml.lake import feature_table
from resources.ml.model.backtest import (
    BACKTEST_SCORE_SCHEMA,
    backtest_basis,
    backtest_month,
    first_feature_day,
    record_backtest_model,
    write_month,
)
from resources.ml.model.plots import curves_png, md_image
from resources.ml.model.window import LabelledWindow
from resources.ml.registry.storage import Registry

BACKTEST_KEY = dg.AssetKey(["ml", "backtest"])


def _month_end(start: date) -> date:
    return date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def build_backtest_asset(monthly: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=BACKTEST_KEY,
        group_name="ml",
        kinds=ML_KINDS,
        owners=[DATA_SCIENCE],
        partitions_def=monthly,
        backfill_policy=SINGLE_RUN,
        output_required=False,
        deps=[FEATURES_KEY, CANDIDATE_KEY],
        automation_condition=month_closed(),  # extends by the month that just closed
        metadata={"dagster/column_schema": table_schema(BACKTEST_SCORE_SCHEMA)},
        description="Walk-forward backtest: each month from the second on is scored by a model with the "
        "production model's family and parameters, fitted only on the days strictly before that month. "
        "Writes ml.backtest_scores and one metrics row per month (ml.backtest_metrics): the out-of-sample "
        "quality history. Backtest models are registered with status 'backtest' and cannot be promoted.",
    )
    def backtest(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings = lakehouse.settings()
        registry = Registry(settings)
        basis = backtest_basis(registry)
        months = [(s, _month_end(s)) for s in (date.fromisoformat(k) for k in context.partition_keys)]
        first = first_feature_day(settings)
        if first is None:
            raise ValueError(f"no features in ml.{feature_table()}: materialize ml/flight_features")
        window = LabelledWindow(settings)
        for start, end in months:
            version = f"backtest-{start:%Y-%m}-{basis.source_version}"
            result = backtest_month(window, first, start, end, basis.family, basis.params, version)
            if result is None:
                # Recorded, so the partition counts as done (a backfill marks an unmaterialized one failed).
                yield dg.AssetMaterialization(
                    asset_key=BACKTEST_KEY,
                    partition=start.isoformat(),
                    metadata={
                        "dagster/row_count": 0,
                        "skipped": "no earlier labelled days to train on (or no flights)",
                    },
                )
                continue
            write_month(settings, result)
            record_backtest_model(registry, result, basis)
            m = result.metrics
            yield dg.AssetMaterialization(
                asset_key=BACKTEST_KEY,
                partition=start.isoformat(),
                metadata={
                    "dagster/row_count": m["flights"],
                    "model_version": version,
                    "replays": basis.source_version,
                    **{
                        k: m[k]
                        for k in ("roc_auc", "pr_auc", "brier", "calibration_error", "late_rate", "train_rows")
                        if m.get(k) is not None
                    },
                    "trained_through": str(m["trained_through"]),
                    "metrics": frame_table(pl.DataFrame([m])),
                    "curves": dg.MetadataValue.md(
                        md_image(
                            curves_png(
                                result.y, result.p, f"backtest {result.month}: trained through {m['trained_through']}"
                            ),
                            "ROC, precision-recall and calibration",
                        )
                    ),
                },
            )

    return backtest
