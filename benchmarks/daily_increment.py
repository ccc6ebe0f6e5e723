"""One new day, delivery to published scores and monitoring rows, as the automation runs it.

Builds January 2013 in a temporary lakehouse (trained on Jan 1-20, judged on Jan 21-31), then
evaluates the assets' automation conditions at 02:05 on 2013-02-02 (the nightly tick after
2013-02-01 ends) and executes what they request as the sensor would: the day's partitions of
every daily asset in one run, then the next tick's catalog republish. Prints each step's time
(Dagster's own step stats) and the total. Goal (issue 9): <= 15 s. Nothing is asserted.

    .venv/bin/python benchmarks/daily_increment.py --root LAKEHOUSE --day 2013-12-31

measures the same on a lakehouse already built (e.g. `benchmarks/scale.py --sf 100 --keep`; set
LAKEHOUSE_SOURCES and DAGSTER_HOME as that build did): the day's partitions of every daily asset
executed again in one run (its delivery re-read, the day replaced in each table), then the
catalog's publish. A day that is already built is the stand-in for a new one: the embedded data
end on 2013-12-31.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from assets.catalog.publish import CATALOG_KEY
from assets.definitions import build_definitions
from assets.jobs import DAILY_JOB, PROMOTE_JOB, PUBLISH_JOB, REFERENCE_JOB, SCORE_JOB, TRAIN_JOB, of_horizon
from resources.core.dagster_private import ASSET_PARTITION_RANGE_END_TAG as END
from resources.core.dagster_private import ASSET_PARTITION_RANGE_START_TAG as START
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.features.availability import DAY_AHEAD, HORIZONS

warnings.filterwarnings("ignore")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
SPLIT = {
    "train_start": "2013-01-01",
    "validation_start": "2013-01-15",
    "test_start": "2013-01-21",
    "test_end": "2013-02-01",
}
APPROVAL = {"approver": "bench", "reason": "daily increment benchmark"}
DAY = "2013-02-01"
TICK = datetime(2013, 2, 2, 2, 5, tzinfo=timezone.utc)


def run(defs, instance, job: str, start: str | None = None, end: str | None = None, config: dict | None = None):
    tags = {START: start, END: end or start} if start else {}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=tags, run_config={**QUIET, **(config or {})}
    )
    assert result.success, job


def requested(result, defs) -> dict[str | None, list[dg.AssetKey]]:
    """The tick's requests grouped by partition, as the sensor groups them into runs."""
    by_partition: dict[str | None, list[dg.AssetKey]] = {}
    for key in defs.resolve_asset_graph().get_all_asset_keys():
        for partition in result.get_requested_partitions(key):
            by_partition.setdefault(partition, []).append(key)
    return by_partition


def execute(defs, instance, keys, partition) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=keys, partition_key=partition, run_config=QUIET
    )
    assert result.success
    steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(result.run_id)}
    return time.perf_counter() - started, steps


def on_built(root: Path, day: str, exclude: list[str]) -> None:
    defs = build_definitions(LakehouseResource(root=str(root)))
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    graph = defs.resolve_asset_graph()
    daily = sorted(
        (
            k
            for k in graph.get_all_asset_keys()
            if isinstance(graph.get(k).partitions_def, dg.DailyPartitionsDefinition)
        ),
        key=lambda k: k.to_user_string(),
    )
    daily = [k for k in daily if not any(k.to_user_string().startswith(prefix) for prefix in exclude)]
    rows: list[tuple[str, float]] = []
    for keys, partition in ((daily, day), ([CATALOG_KEY], None)):
        total, steps = execute(defs, instance, keys, partition)
        rows += [(f"  step {k}", s) for k, s in steps.items()]
        rows.append((f"run [{partition}]: {len(keys)} assets, overhead", total - sum(steps.values())))
    for name, seconds in rows:
        print(f"  {name:58s} {seconds:6.1f} s")
    print(f"daily increment {day} on {root}: {sum(s for _, s in rows):.1f} s (load average {os.getloadavg()[0]:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="a built lakehouse (default: January in a temp one)")
    parser.add_argument("--day", default="2013-12-31", help="with --root: the day to run again")
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=[],
        help="with --root: daily assets left out, by key prefix (e.g. ml/flight_delay_scores)",
    )
    args = parser.parse_args()
    if args.root is not None:
        on_built(args.root.resolve(), args.day, args.exclude)
        return
    with tempfile.TemporaryDirectory() as tmp:
        defs = build_definitions(LakehouseResource(root=str(Path(tmp) / "lakehouse")))
        instance = dg.DagsterInstance.ephemeral()
        run(defs, instance, REFERENCE_JOB)
        run(defs, instance, DAILY_JOB, "2013-01-01", "2013-01-31")
        for horizon in HORIZONS:  # each horizon's own model, promoted and scored
            candidate = "ml__model_candidate" + ("" if horizon == DAY_AHEAD else f"_{horizon}")
            run(defs, instance, of_horizon(TRAIN_JOB, horizon), config={"ops": {candidate: {"config": SPLIT}}})
            promote = {"ops": {"ml__production_model": {"config": {**APPROVAL, "horizon": horizon}}}}
            run(defs, instance, PROMOTE_JOB, config=promote)
            run(defs, instance, of_horizon(SCORE_JOB, horizon), "2013-01-01", "2013-01-31")
        run(defs, instance, PUBLISH_JOB)
        # Conditions remember what they saw: a first evaluation before the tick, as the sensor does.
        quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=TICK.replace(hour=1))
        started = time.perf_counter()
        tick = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=TICK, cursor=quiet.cursor
        )
        evaluate = time.perf_counter() - started
        rows: list[tuple[str, float]] = [("evaluate conditions (02:05 tick)", evaluate)]
        for partition, keys in requested(tick, defs).items():
            total, steps = execute(defs, instance, keys, partition)
            rows += [(f"  step {k}", s) for k, s in steps.items()]
            rows.append((f"run [{partition}]: {len(keys)} assets, overhead", total - sum(steps.values())))
        started = time.perf_counter()
        after = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=TICK.replace(minute=6), cursor=tick.cursor
        )
        rows.append(("evaluate conditions (02:06 tick)", time.perf_counter() - started))
        for partition, keys in requested(after, defs).items():
            total, steps = execute(defs, instance, keys, partition)
            rows += [(f"  step {k}", s) for k, s in steps.items()]
            rows.append((f"run [{partition}]: {len(keys)} assets, overhead", total - sum(steps.values())))
    for name, seconds in rows:
        print(f"  {name:58s} {seconds:6.1f} s")
    load = os.getloadavg()[0]
    print(f"daily increment {DAY}: {sum(s for _, s in rows):.1f} s (goal 15 s; load average {load:.1f})")


if __name__ == "__main__":
    main()
