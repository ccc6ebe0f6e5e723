"""ml/flight_features: point-in-time features per scheduled flight, one parquet file per day."""

import dagster as dg

from assets.automation import downstream
from assets.common import SINGLE_RUN, WAREHOUSE_POOL, per_partition
from assets.ml.keys import FEATURES_KEY
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.feature_build import build_and_store_features
from resources.ml.features import DATA_SCIENCE, FEATURES
from resources.ml.store import features_dir

FEATURE_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("flight_id", "string", "Flight key (curated.fct_flights)."),
    dg.TableColumn("flight_date", "date", "Scheduled date: the partition."),
    dg.TableColumn("batch_id", "string", "Raw batch the flight came from (lineage)."),
    *[dg.TableColumn(f.name, f.dtype, f"{f.description} Owner: {f.owner}.") for f in FEATURES],
])


def build_features_asset(daily: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=FEATURES_KEY, group_name="ml", kinds={"polars", "parquet"}, owners=[DATA_SCIENCE],
        partitions_def=daily, backfill_policy=SINGLE_RUN, automation_condition=downstream(), pool=WAREHOUSE_POOL,
        deps=[dg.AssetKey(["curated", "fct_flights"]), dg.AssetKey(["staging", "stg_nycflights__weather"]),
              dg.AssetKey(["snapshots", "planes_snapshot"]), dg.AssetKey(["curated", "dim_dates"])],
        metadata={"dagster/column_schema": FEATURE_SCHEMA},
        check_specs=[dg.AssetCheckSpec("no_post_departure_leakage", asset=FEATURES_KEY, blocking=True,
                                       description="Features of a day must not change when that day's "
                                       "post-departure columns are blanked or altered.")],
        description="Point-in-time features for every scheduled flight, known before its day starts "
        "(schedule, calendar, aircraft, origin weather as perfect forecast, past late rates). The same "
        "table feeds training (with labels) and scoring (without).",
    )
    def flight_features(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings, window = lakehouse.settings(), context.partition_time_window
        built = build_and_store_features(settings, window.start.date(), window.end.date())
        yield dg.MaterializeResult(
            metadata={"dagster/row_count": built.rows, "features": len(FEATURES), "days": len(built.rows_by_day),
                      "path": dg.MetadataValue.path(str(features_dir(settings)))},
            check_results=[dg.AssetCheckResult(check_name="no_post_departure_leakage", passed=True, metadata={
                "days_checked": ", ".join(map(str, built.leakage_checked))})],
        )
        yield from per_partition(FEATURES_KEY, {d.isoformat(): {"dagster/row_count": n}
                                                for d, n in built.rows_by_day.items()})

    return flight_features
