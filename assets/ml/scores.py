"""ml/flight_delay_scores (day-ahead) and ml/flight_delay_scores_nowcast_2h: every scheduled flight
of a day scored once by its horizon's production model."""

import time

import dagster as dg

from assets.automation import downstream
from assets.common import SINGLE_RUN, per_partition, run_row_count, table_schema
from assets.ml.keys import PRODUCTION_KEY, horizon_key
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.features.availability import DAY_AHEAD, NOWCAST
from resources.ml.features.catalog import DATA_SCIENCE
from resources.ml.model.scoring import SCORE_SCHEMA, score_days
from resources.ml.registry.storage import Registry
from resources.raw.zone import days_in

WHEN = {
    DAY_AHEAD: "at 22:00 New York time the evening before the day (before its flights are delivered)",
    NOWCAST: "two hours before each flight's scheduled departure (from the day's operations known then)",
}


def build_scores_asset(daily: dg.PartitionsDefinition, horizon: str = DAY_AHEAD) -> dg.AssetsDefinition:
    key = horizon_key("flight_delay_scores", horizon)

    @dg.asset(
        key=key,
        group_name="ml",
        kinds={"scikit-learn", "ducklake"},
        owners=[DATA_SCIENCE],
        partitions_def=daily,
        backfill_policy=SINGLE_RUN,
        deps=[horizon_key("flight_features", horizon), PRODUCTION_KEY],
        automation_condition=downstream(),
        metadata={"dagster/column_schema": table_schema(SCORE_SCHEMA)},
        description=f"Every flight scheduled that day scored once by the {horizon} production model, "
        f"predicted {WHEN.get(horizon, horizon)}: flight_id, flight_date, horizon, as_of, p_late, "
        "model_version, scored_at, batch_id (ml.flight_delay_scores in the warehouse DuckLake). Re-scoring "
        "replaces a run's days in one transaction and archives the "
        "replaced version.",
    )
    def _scores(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings, window = lakehouse.settings(), context.partition_time_window
        started = time.perf_counter()
        version, rows, archived = score_days(
            settings, Registry(settings), days_in(window.start.date(), window.end.date()), horizon
        )
        seconds = time.perf_counter() - started
        yield dg.MaterializeResult(
            metadata={
                **run_row_count(sum(rows.values()), len(rows)),
                "model_version": version,
                "horizon": horizon,
                "days": len(rows),
                "replaced_days_archived": archived,
                "seconds": round(seconds, 2),
                "rows_per_second": round(sum(rows.values()) / seconds) if seconds else None,
            }
        )
        yield from per_partition(
            key, {d.isoformat(): {"dagster/row_count": n, "model_version": version} for d, n in rows.items()}
        )

    return _scores
