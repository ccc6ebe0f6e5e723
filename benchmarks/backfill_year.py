"""Timing goals live here, never in tests: a one-year backfill in one run, against the cost
of one run per partition (measured on a few days and extrapolated to 365).

    make bench        # prints a small table; nothing is asserted
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import dagster as dg

from assets.definitions import build_definitions
from assets.jobs import DAILY_JOB, PUBLISH_JOB, REFERENCE_JOB
from resources.core.dagster_private import ASSET_PARTITION_RANGE_END_TAG as END
from resources.core.dagster_private import ASSET_PARTITION_RANGE_START_TAG as START
from resources.core.lakehouse_resource import LakehouseResource

warnings.filterwarnings("ignore")
PER_PARTITION_SAMPLE = 3


def timed(defs, instance, job, tags=None) -> float:
    started = time.perf_counter()
    assert defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags or {}).success
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        defs = build_definitions(LakehouseResource(root=str(Path(tmp) / "lakehouse")))
        instance = dg.DagsterInstance.ephemeral()
        keys = defs.resolve_job_def(DAILY_JOB).partitions_def.get_partition_keys()
        reference = timed(defs, instance, REFERENCE_JOB)
        year = timed(defs, instance, DAILY_JOB, {START: keys[0], END: keys[-1]})
        publish = timed(defs, instance, PUBLISH_JOB)
        per_day = [timed(defs, instance, DAILY_JOB, {START: k, END: k}) for k in keys[:PER_PARTITION_SAMPLE]]
    mean = sum(per_day) / len(per_day)
    print(f"reference data + dimensions (1 run):       {reference:7.1f} s")
    print(f"{len(keys)} daily partitions in ONE run:         {year:7.1f} s")
    print(f"catalog publish:                           {publish:7.1f} s")
    print(
        f"one run per partition (mean of {len(per_day)}):       {mean:7.1f} s/run -> {mean * len(keys) / 60:.0f} min for {len(keys)}"
    )


if __name__ == "__main__":
    main()
