"""Point-in-time features per scheduled flight, one asset per prediction horizon, a file per day.

- ``ml/flight_features`` (day_ahead): a day's flights from its published timetable
  (curated/fct_schedules), history and weather up to the day before. It exists before the day's
  flights are delivered; production scores read it.
- ``ml/flight_features_nowcast_2h``: two hours before each departure, with the day's operations,
  so it needs the day's delivered flights.
"""

import dagster as dg

from assets.automation import downstream
from assets.common import SINGLE_RUN, WAREHOUSE_POOL, per_partition, run_row_count
from assets.ml.keys import FEATURES_KEY, NOWCAST_FEATURES_KEY
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.features.availability import DAY_AHEAD, NOWCAST
from resources.ml.features.build import build_and_store_features
from resources.ml.features.catalog import DATA_SCIENCE, FEATURES_BY_HORIZON
from resources.ml.lake import feature_table

FLIGHTS = dg.AssetKey(["curated", "fct_flights"])
SCHEDULES = dg.AssetKey(["curated", "fct_schedules"])
WEATHER = dg.AssetKey(["curated", "fct_weather_hourly"])
REFERENCE = [dg.AssetKey(["snapshots", "planes_snapshot"]), dg.AssetKey(["curated", "dim_dates"])]
# The day before: a day-ahead feature reads the flights and weather known by 22:00 that evening.
DAY_BEFORE = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True)

KEYS = {DAY_AHEAD: FEATURES_KEY, NOWCAST: NOWCAST_FEATURES_KEY}
DEPS = {
    DAY_AHEAD: [
        dg.AssetDep(SCHEDULES),
        dg.AssetDep(FLIGHTS, partition_mapping=DAY_BEFORE),
        dg.AssetDep(WEATHER, partition_mapping=DAY_BEFORE),
        *REFERENCE,
    ],
    NOWCAST: [FLIGHTS, WEATHER, *REFERENCE],
}
DESCRIPTIONS = {
    DAY_AHEAD: "Day-ahead features of every scheduled flight, predicted at 22:00 New York time the evening "
    "before (`as_of`): the day's published timetable, calendar, aircraft registry, origin weather "
    "observations known by then, and outcomes and operations known by then. Exists before the day's "
    "flights are delivered; production scores read it. The same table feeds training (with labels).",
    NOWCAST: "Nowcast features of every flight, predicted two hours before its scheduled departure "
    "(`as_of`): the day-ahead features recomputed at that time, plus the day's departures, "
    "cancellations and outcomes known by then and the aircraft's previous leg.",
}


def feature_schema(horizon: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn("flight_id", "string", "Flight key (curated.fct_flights, curated.fct_schedules)."),
            dg.TableColumn("flight_date", "date", "Scheduled date: the partition."),
            dg.TableColumn("batch_id", "string", "Raw batch the flight's row came from (lineage)."),
            dg.TableColumn("horizon", "string", f"The prediction horizon: {horizon}."),
            dg.TableColumn("as_of", "timestamp", "Prediction time (UTC): every feature reads only rows known then."),
            *[
                dg.TableColumn(f.name, f.dtype, f"{f.description} Rule: {f.known}. Owner: {f.owner}.")
                for f in FEATURES_BY_HORIZON[horizon]
            ],
        ]
    )


def build_features_asset(daily: dg.PartitionsDefinition, horizon: str) -> dg.AssetsDefinition:
    key = KEYS[horizon]

    @dg.asset(
        key=key,
        group_name="ml",
        kinds={"polars", "ducklake"},
        owners=[DATA_SCIENCE],
        partitions_def=daily,
        backfill_policy=SINGLE_RUN,
        automation_condition=downstream(),
        pool=WAREHOUSE_POOL,
        deps=DEPS[horizon],
        metadata={"dagster/column_schema": feature_schema(horizon)},
        check_specs=[
            dg.AssetCheckSpec(
                "point_in_time",
                asset=key,
                blocking=True,
                description="Features must not move when every row not yet known at "
                "the prediction time (later weather, departures, outcomes) is "
                "rewritten with garbage; every feature declares its availability rule.",
            )
        ],
        description=DESCRIPTIONS[horizon],
    )
    def _features(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings, window = lakehouse.settings(), context.partition_time_window
        built = build_and_store_features(settings, window.start.date(), window.end.date(), horizons=(horizon,))
        yield dg.MaterializeResult(
            metadata={
                **run_row_count(built.rows, len(built.rows_by_day)),
                "features": len(FEATURES_BY_HORIZON[horizon]),
                "days": len(built.rows_by_day),
                "horizon": horizon,
                "table": f"ml.{feature_table(horizon)}",
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="point_in_time",
                    passed=True,
                    metadata={"days_checked": ", ".join(map(str, built.time_checked)), "horizon": horizon},
                )
            ],
        )
        yield from per_partition(key, {d.isoformat(): {"dagster/row_count": n} for d, n in built.rows_by_day.items()})

    return _features
