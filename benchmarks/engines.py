"""One month through curated on each engine, side by side: the same dbt command on the same raw zone.

Builds January 2013's raw zone in a temporary lakehouse, then runs, alternating and from cold each
time (a fresh DuckDB warehouse file, a fresh Spark warehouse and metastore), the selection Spark
can build (resources/warehouse/spark_engine.SPARK_BUILD: staging, intermediate, fct_flights,
carrier_daily_performance, dim_carriers, dim_dates and their tests) as its own process:

- duckdb: `dbt build` on the `dev` target (the path `make run` takes, without Dagster around it);
- duckdb-s3: the same, with the raw zone read from a local S3 server (moto's server mode on
  127.0.0.1; LAKEHOUSE_RAW_URL, resources/core/object_store.py);
- spark: `python -m resources.warehouse.spark_engine` on `dev_spark` (local[2], this machine's cores).

Prints each run's wall time, dbt's own elapsed time (Spark's JVM start is most of the difference)
and the ratios to local DuckDB. Nothing is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
warnings.filterwarnings("ignore")
WINDOW = ("2013-01-01", "2013-02-01")
ROUNDS = 2


def build_raw(root: Path):
    """January's raw zone (and a DuckDB build, which the runs below replace from cold)."""
    from assets.jobs import DAILY_JOB, REFERENCE_JOB
    from tests.conftest import make_lakehouse

    lh = make_lakehouse(root)
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    assert lh.run(REFERENCE_JOB, run_config=quiet).success
    assert lh.run(DAILY_JOB, WINDOW[0], "2013-01-31", run_config=quiet).success
    return lh.settings


def timed(cmd: list[str], env: dict[str, str], target: Path) -> tuple[float, float]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{cmd[:3]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wall, json.loads((target / "run_results.json").read_text())["elapsed_time"]


def side_by_side(work: Path, settings, s3_env: dict[str, str], url: str) -> dict[str, list[tuple[float, float]]]:
    """ROUNDS rounds of the three engines, alternating, each from cold: (wall, dbt elapsed) per run."""
    from resources.warehouse.spark_engine import SPARK_BUILD

    base = {
        **os.environ,
        **settings.dbt_env(),
        "DO_NOT_TRACK": "1",
        "LAKEHOUSE_WINDOW_START": WINDOW[0],
        "LAKEHOUSE_WINDOW_END": WINDOW[1],
    }
    times: dict[str, list[tuple[float, float]]] = {"duckdb": [], "duckdb-s3": [], "spark": []}
    for i in range(ROUNDS):
        for engine, extra in (("duckdb", {}), ("duckdb-s3", {**s3_env, "LAKEHOUSE_RAW_URL": url})):
            target = work / f"{engine}-target-{i}"
            env = {
                **base,
                **extra,
                "LAKEHOUSE_WAREHOUSE_CATALOG": f"sqlite:{work / f'{engine}-{i}.sqlite'}",
                "LAKEHOUSE_WAREHOUSE_DATA": str(work / f"{engine}-{i}") + "/",
            }
            times[engine].append(
                timed(
                    [
                        str(REPO / ".venv" / "bin" / "dbt"),
                        *SPARK_BUILD,
                        "--project-dir",
                        "dbt_project",
                        "--profiles-dir",
                        "dbt_project",
                        "--target-path",
                        str(target),
                        "--log-path",
                        str(target),
                    ],
                    env,
                    target,
                )
            )
        spark_dir = work / f"spark-{i}"
        times["spark"].append(
            timed(
                [sys.executable, "-m", "resources.warehouse.spark_engine"],
                {**base, "LAKEHOUSE_SPARK_DIR": str(spark_dir)},
                spark_dir / "dbt-target",
            )
        )
        for engine in times:
            wall, dbt = times[engine][-1]
            print(f"round {i + 1} {engine:9s}: wall {wall:6.1f} s, dbt elapsed {dbt:6.1f} s", flush=True)
    return times


def main() -> None:
    from tests.conftest import local_s3_server, upload_raw_zone

    work = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    try:
        settings = build_raw(work / "lakehouse")
        with local_s3_server() as s3_env:
            url = upload_raw_zone(s3_env, settings.raw_dir, "bench", "lakehouse")
            times = side_by_side(work, settings, s3_env, url)
        days = sum(1 for _ in (settings.raw_dir / "flights").iterdir())
        median = {engine: statistics.median(w for w, _ in runs) for engine, runs in times.items()}
        print(
            f"one month ({days} delivery days) through curated, median of {ROUNDS}: "
            f"DuckDB {median['duckdb']:.1f} s, DuckDB over S3 {median['duckdb-s3']:.1f} s "
            f"({median['duckdb-s3'] / median['duckdb']:.2f}x), Spark {median['spark']:.1f} s "
            f"({median['spark'] / median['duckdb']:.1f}x)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
