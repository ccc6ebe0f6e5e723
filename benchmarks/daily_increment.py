"""One new day, delivery to published scores and monitoring rows, with the per-step split.

Builds January 2013 in a temporary lakehouse (trained on Jan 1-20, judged on Jan 21-31), then
times what the nightly automation runs for 2013-02-01: raw -> dbt -> features (one run), scores,
monitoring of the open month, catalog publish. Goal (issue 9): <= 15 s in total. Nothing is
asserted; `make bench` prints it.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG as END
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_START_TAG as START

from assets.definitions import build_definitions
from assets.jobs import DAILY_JOB, MONITOR_JOB, PROMOTE_JOB, PUBLISH_JOB, REFERENCE_JOB, SCORE_JOB, TRAIN_JOB
from resources.core.lakehouse_resource import LakehouseResource

warnings.filterwarnings("ignore")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
SPLIT = {"train_start": "2013-01-01", "validation_start": "2013-01-15", "test_start": "2013-01-21",
         "test_end": "2013-02-01"}
APPROVAL = {"approver": "bench", "reason": "daily increment benchmark"}
DAY = "2013-02-01"


def run(defs, instance, job: str, start: str | None = None, end: str | None = None, config: dict | None = None) -> float:
    tags = {START: start, END: end or start} if start else {}
    started = time.perf_counter()
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags,
                                                          run_config={**QUIET, **(config or {})})
    assert result.success, job
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        defs = build_definitions(LakehouseResource(root=str(Path(tmp) / "lakehouse")))
        instance = dg.DagsterInstance.ephemeral()
        run(defs, instance, REFERENCE_JOB)
        run(defs, instance, DAILY_JOB, "2013-01-01", "2013-01-31")
        run(defs, instance, TRAIN_JOB, config={"ops": {"ml__model_candidate": {"config": SPLIT}}})
        run(defs, instance, PROMOTE_JOB, config={"ops": {"ml__production_model": {"config": APPROVAL}}})
        run(defs, instance, SCORE_JOB, "2013-01-01", "2013-01-31")
        run(defs, instance, PUBLISH_JOB)
        steps = {
            "raw -> dbt -> features (one run)": run(defs, instance, DAILY_JOB, DAY),
            "scores": run(defs, instance, SCORE_JOB, DAY),
            "monitoring of the open month": run(defs, instance, MONITOR_JOB, "2013-02-01"),
            "catalog publish": run(defs, instance, PUBLISH_JOB),
        }
    for name, seconds in steps.items():
        print(f"  {name:36s} {seconds:6.1f} s")
    print(f"daily increment {DAY}: {sum(steps.values()):.1f} s (goal 15 s)")


if __name__ == "__main__":
    main()
