"""`make run`: materialize every asset and every partition over the configured deliveries.

Three runs, recorded in the Dagster instance (DAGSTER_HOME) so they show in the UI: reference
data and dimensions, then all daily partitions in ONE run (single-run backfill), then the
analyst catalog.
"""

from __future__ import annotations

import sys
import time

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.definitions import build_definitions
from assets.jobs import (
    BACKTEST_JOB, DAILY_JOB, MONITOR_JOB, PROMOTE_JOB, PUBLISH_JOB, REFERENCE_JOB, SCORE_JOB, TRAIN_JOB,
)
from resources.catalog.publish import connect_catalog
from resources.core.runs import process_tags, sweep_dead_runs
from resources.core.settings import Settings


# Step events are DEBUG; the full log stays in the run's record in the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


BOOTSTRAP_APPROVAL = {
    "approver": "make-run (bootstrap)",
    "reason": "first production model on the embedded data, deployed by `make run`",
}


def main() -> int:
    settings = Settings.from_env().ensure()
    defs = build_definitions()
    instance = dg.DagsterInstance.get()
    for run_id in sweep_dead_runs(instance):  # a killed earlier `make run` no longer blocks the queue
        print(f"[make run] marked failed: run {run_id}, whose process had died")
    daily_job = defs.resolve_job_def(DAILY_JOB)
    keys = daily_job.partitions_def.get_partition_keys()
    year = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    month_keys = defs.resolve_job_def(MONITOR_JOB).partitions_def.get_partition_keys()
    months = {ASSET_PARTITION_RANGE_START_TAG: month_keys[0], ASSET_PARTITION_RANGE_END_TAG: month_keys[-1]}
    runs = [
        (REFERENCE_JOB, {}, {}),
        (DAILY_JOB, year, {}),
        (TRAIN_JOB, {}, {}),
        # The first production model needs an approval like any other; make run records this one.
        (PROMOTE_JOB, {}, {"ops": {"ml__production_model": {"config": BOOTSTRAP_APPROVAL}}}),
        (SCORE_JOB, year, {}),
        # Before monitoring: the report index shows the out-of-sample history next to each month.
        (BACKTEST_JOB, months, {}),
        (MONITOR_JOB, months, {}),
        (PUBLISH_JOB, {}, {}),
    ]
    for name, tags, config in runs:
        started = time.perf_counter()
        result = defs.resolve_job_def(name).execute_in_process(
            instance=instance, tags={**tags, **process_tags()}, run_config={**QUIET, **config}
        )
        span = f" ({tags[ASSET_PARTITION_RANGE_START_TAG]} .. {tags[ASSET_PARTITION_RANGE_END_TAG]})" if tags else ""
        print(f"[make run] {name}{span}: {'ok' if result.success else 'FAILED'} in {time.perf_counter() - started:.1f}s")
        if not result.success:
            return 1
    with connect_catalog(settings) as con:
        n, distinct = con.execute("select count(*), count(distinct flight_id) from curated.fct_flights").fetchone()
        days, scored, model, auc = con.execute(
            "select count(distinct s.flight_date), count(*), any_value(s.model_version), any_value(r.holdout_roc_auc) "
            "from ml.flight_delay_scores s join ml.model_registry r using (model_version)"
        ).fetchone()
    print(f"""
Lakehouse ({settings.env}): {settings.root}
Analyst catalog (read-only): {settings.catalog_path}
  curated.fct_flights: {n:,} rows, {distinct:,} distinct flight_id
  ml.flight_delay_scores: {scored:,} scores over {days} days from production model {model}
  (test-window ROC AUC {auc:.4f})
Monitoring reports (open offline): {settings.reports_dir / "index.html"}
Evidently UI:                 make monitor-ui   (http://127.0.0.1:8000)
Sandbox for your own tables:  make sandbox
Dagster UI:                   make dev   (http://127.0.0.1:3000)
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
