"""Scoring timing: a year of daily partitions in one run vs one run per partition, and model
throughput at 10x the embedded data.

Runs on a temporary copy of an already built lakehouse (``make run`` first), so it neither
rewrites nor archives the real scores.

    make bench
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dagster as dg
import polars as pl
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG as END
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_START_TAG as START

from assets.definitions import build_definitions
from assets.jobs import SCORE_JOB
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.registry import Registry
from resources.ml.store import features_dir, read_days
from resources.ml.training import predict
from resources.core.settings import Settings

warnings.filterwarnings("ignore")
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
PER_PARTITION_SAMPLE = 3
SCALE = 10


def main() -> None:
    source = Settings.from_env()
    if Registry(source).production_version() is None:
        raise SystemExit(f"no production model under {source.root}: run `make run` first")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lakehouse"
        shutil.copytree(source.root, root, ignore=shutil.ignore_patterns("published", "sandbox", "*.duckdb"))
        settings = Settings(root=root, env=source.env)
        defs = build_definitions(LakehouseResource(root=str(root), env=source.env))
        instance = dg.DagsterInstance.ephemeral()
        job = defs.resolve_job_def(SCORE_JOB)
        keys = job.partitions_def.get_partition_keys()

        def timed(tags: dict) -> float:
            started = time.perf_counter()
            assert job.execute_in_process(instance=instance, tags=tags, run_config=QUIET).success
            return time.perf_counter() - started

        year = timed({START: keys[0], END: keys[-1]})
        # One run per partition, launched as Dagster launches runs: a new process that loads the
        # code location and executes the run (what a per-partition backfill pays 365 times).
        env = {**os.environ, "LAKEHOUSE_ROOT": str(root), "DAGSTER_HOME": tmp}
        per_day = []
        for key in keys[:PER_PARTITION_SAMPLE]:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "assets.definitions",
                            "--select", "ml/flight_delay_scores", "--partition", key],
                           env=env, check=True, capture_output=True)
            per_day.append(time.perf_counter() - started)

        registry = Registry(settings)
        pipeline = registry.load(registry.production_version())
        features = read_days(features_dir(settings))
        big = pl.concat([features] * SCALE)
        started = time.perf_counter()
        predict(pipeline, big)
        predict_s = time.perf_counter() - started

    mean = sum(per_day) / len(per_day)
    print(f"score {len(keys)} partitions in ONE run:          {year:7.1f} s ({features.height:,} flights)")
    print(f"one launched run per partition (mean of {len(per_day)}): {mean:7.1f} s/run -> {mean * len(keys) / 60:.0f} min for {len(keys)}")
    print(f"model throughput at {SCALE}x ({big.height:,} rows):  {big.height / predict_s:,.0f} rows/s "
          f"-> {predict_s / 60:.1f} min for a year at {SCALE}x")


if __name__ == "__main__":
    main()
