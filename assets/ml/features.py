"""ml/flight_features: point-in-time features per scheduled flight, one parquet file per day."""

import dagster as dg

from assets.automation import downstream
from assets.common import SINGLE_RUN, WAREHOUSE_POOL, per_partition
from assets.ml.keys import FEATURES_KEY
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.feature_build import build_and_store_features
from resources.ml.availability import HORIZONS
from resources.ml.features import DATA_SCIENCE, FEATURES
from resources.ml.store import features_dir

FEATURE_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("flight_id", "string", "Flight key (curated.fct_flights)."),
    dg.TableColumn("flight_date", "date", "Scheduled date: the partition."),
    dg.TableColumn("batch_id", "string", "Raw batch the flight came from (lineage)."),
    dg.TableColumn("horizon", "string", "The prediction horizon: day_ahead (this table) or nowcast_2h (ml/features_nowcast_2h)."),
    dg.TableColumn("as_of", "timestamp", "Prediction time (UTC): every feature reads only rows known then."),
    *[dg.TableColumn(f.name, f.dtype, f"{f.description} Owner: {f.owner}.") for f in FEATURES],
])


def build_features_asset(daily: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=FEATURES_KEY, group_name="ml", kinds={"polars", "parquet"}, owners=[DATA_SCIENCE],
        partitions_def=daily, backfill_policy=SINGLE_RUN, automation_condition=downstream(), pool=WAREHOUSE_POOL,
        deps=[dg.AssetKey(["curated", "fct_flights"]), dg.AssetKey(["staging", "stg_nycflights__weather"]),
              dg.AssetKey(["snapshots", "planes_snapshot"]), dg.AssetKey(["curated", "dim_dates"])],
        metadata={"dagster/column_schema": FEATURE_SCHEMA},
        check_specs=[dg.AssetCheckSpec("point_in_time", asset=FEATURES_KEY, blocking=True,
                                       description="For each horizon, features must not move when every row "
                                       "not yet known at the prediction time (later weather, departures, "
                                       "outcomes) is rewritten with garbage.")],
        description="Point-in-time features for every scheduled flight at each prediction horizon: "
        "day_ahead (22:00 New York time the evening before) and nowcast_2h (scheduled departure - 2 h). "
        "Each reads only rows known at its `as_of`: the schedule, calendar, aircraft registry, origin "
        "weather observations, outcomes and departures known by then. The same tables feed training "
        "(with labels) and scoring (without).",
    )
    def flight_features(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings, window = lakehouse.settings(), context.partition_time_window
        built = build_and_store_features(settings, window.start.date(), window.end.date())
        yield dg.MaterializeResult(
            metadata={"dagster/row_count": built.rows, "features": len(FEATURES), "days": len(built.rows_by_day),
                      "horizons": ", ".join(HORIZONS), "path": dg.MetadataValue.path(str(features_dir(settings)))},
            check_results=[dg.AssetCheckResult(check_name="point_in_time", passed=True, metadata={
                "days_checked": ", ".join(map(str, built.time_checked)), "horizons": ", ".join(built.horizons)})],
        )
        yield from per_partition(FEATURES_KEY, {d.isoformat(): {"dagster/row_count": n}
                                                for d, n in built.rows_by_day.items()})

    return flight_features
