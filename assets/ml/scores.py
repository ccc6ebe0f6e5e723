"""ml/flight_delay_scores: every scheduled flight of a day scored once by the production model."""

import time

import dagster as dg

from assets.automation import downstream
from assets.common import SINGLE_RUN, per_partition, table_schema
from assets.ml.keys import FEATURES_KEY, ML_KINDS, PRODUCTION_KEY, SCORES_KEY
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.features import DATA_SCIENCE
from resources.ml.registry import Registry
from resources.ml.scoring import SCORE_SCHEMA, score_days
from resources.raw.zone import days_in


def build_scores_asset(daily: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(key=SCORES_KEY, group_name="ml", kinds=ML_KINDS, owners=[DATA_SCIENCE],
              partitions_def=daily, backfill_policy=SINGLE_RUN, deps=[FEATURES_KEY, PRODUCTION_KEY],
              automation_condition=downstream(),
              metadata={"dagster/column_schema": table_schema(SCORE_SCHEMA)},
              description="Every flight scheduled that day scored once by the production model: flight_id, "
              "flight_date, p_late, model_version, scored_at, batch_id. Re-scoring replaces a day atomically "
              "and archives the replaced version.")
    def flight_delay_scores(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings, window = lakehouse.settings(), context.partition_time_window
        started = time.perf_counter()
        version, rows, archived = score_days(settings, Registry(settings), days_in(window.start.date(), window.end.date()))
        seconds = time.perf_counter() - started
        yield dg.MaterializeResult(metadata={
            "dagster/row_count": sum(rows.values()), "model_version": version, "days": len(rows),
            "replaced_days_archived": archived, "seconds": round(seconds, 2),
            "rows_per_second": round(sum(rows.values()) / seconds) if seconds else None,
        })
        yield from per_partition(SCORES_KEY, {d.isoformat(): {"dagster/row_count": n, "model_version": version}
                                              for d, n in rows.items()})

    return flight_delay_scores
