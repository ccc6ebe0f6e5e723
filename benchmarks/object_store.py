"""The whole lakehouse on object storage vs a local folder, side by side: the same Dagster runs.

One month (January 2013) of `make run`'s daily path, in one process per root, alternating and from
cold each time: reference data, then the daily job over the month (raw ingestion with its
contract and archive, dbt staging -> curated, point-in-time features), then the catalog publish.

- local: a fresh temporary folder as LAKEHOUSE_ROOT;
- s3: ``LAKEHOUSE_ROOT=s3://bench/run-N`` on a local S3 server (moto's server mode on 127.0.0.1),
  the DuckDB warehouse and locks in a fresh local state folder (resources/core/settings.py).

Prints each run's wall time per job and the ratio of the medians. Nothing is asserted.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
warnings.filterwarnings("ignore")
WINDOW = ("2013-01-01", "2013-01-31")
ROUNDS = 2


def one_month(root: str) -> dict[str, float]:
    """Reference, the month's daily job and a publish on ``root``: seconds per job."""
    import dagster as dg

    from assets.definitions import build_definitions
    from assets.jobs import DAILY_JOB, PUBLISH_JOB, REFERENCE_JOB
    from resources.core.lakehouse_resource import LakehouseResource
    from tests.conftest import Lakehouse

    lakehouse = LakehouseResource(root=root, env="dev")
    lh = Lakehouse(lakehouse.settings(), build_definitions(lakehouse), dg.DagsterInstance.ephemeral())
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    seconds = {}
    for name, job, window in (
        ("reference", REFERENCE_JOB, None),
        ("daily", DAILY_JOB, WINDOW),
        ("publish", PUBLISH_JOB, None),
    ):
        start = time.perf_counter()
        assert lh.run(job, *(window or ()), run_config=quiet).success, name
        seconds[name] = time.perf_counter() - start
    return seconds


def main() -> None:
    import s3fs

    from tests.conftest import local_s3_server

    os.environ.setdefault("DO_NOT_TRACK", "1")
    work = Path(tempfile.mkdtemp(prefix="bench-object-store-"))
    times: dict[str, list[dict[str, float]]] = {"local": [], "s3": []}
    try:
        with local_s3_server() as aws:
            os.environ.update(aws)
            s3fs.S3FileSystem(skip_instance_cache=True).mkdir("bench")
            for i in range(ROUNDS):
                times["local"].append(one_month(str(work / f"local-{i}" / "lakehouse")))
                os.environ["LAKEHOUSE_STATE_DIR"] = str(work / f"state-{i}")
                times["s3"].append(one_month(f"s3://bench/run-{i}"))
                for where in times:
                    t = times[where][-1]
                    print(
                        f"round {i + 1} {where:5s}: "
                        + ", ".join(f"{k} {v:5.1f} s" for k, v in t.items())
                        + f", total {sum(t.values()):5.1f} s",
                        flush=True,
                    )
        median = {where: statistics.median(sum(t.values()) for t in runs) for where, runs in times.items()}
        print(
            f"one month raw -> curated -> features -> catalog, median of {ROUNDS}: local folder "
            f"{median['local']:.1f} s, every zone on S3 {median['s3']:.1f} s ({median['s3'] / median['local']:.2f}x)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
