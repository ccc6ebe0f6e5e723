"""A run whose process is killed with SIGKILL is marked failed and no longer holds the queue."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import dagster as dg

from resources.runs import IN_PROGRESS, heal_sensor, sweep_dead_runs

RUNNER = textwrap.dedent("""
    import sys
    import dagster as dg
    from assets.definitions import build_definitions
    from assets.jobs import REFERENCE_JOB
    from resources.lakehouse_resource import LakehouseResource
    from resources.runs import process_tags
    defs = build_definitions(LakehouseResource(root=sys.argv[1], env="dev"))
    defs.resolve_job_def(REFERENCE_JOB).execute_in_process(instance=dg.DagsterInstance.get(), tags=process_tags())
""")


def test_a_killed_in_process_run_is_marked_failed_and_frees_the_queue(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DO_NOT_TRACK": "1"}
    child = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path / "lakehouse")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["DAGSTER_HOME"], saved = str(home), os.environ.get("DAGSTER_HOME")
    try:
        instance = dg.DagsterInstance.get()
        deadline = time.monotonic() + 120
        while not instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            assert time.monotonic() < deadline and child.poll() is None, "the run never started"
            time.sleep(0.2)
        time.sleep(1.0)  # mid-run
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        (run,) = instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS))
        assert run.status == dg.DagsterRunStatus.STARTED  # what blocked the queue before

        # The sensor `make dev` runs every minute does the sweep; `make run` does it first thing.
        result = heal_sensor()(dg.build_sensor_context(instance=instance))
        assert run.run_id in str(result)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_runs_count(filters=dg.RunsFilter(statuses=IN_PROGRESS)) == 0  # the queue is free
        assert sweep_dead_runs(instance) == []  # once only
        failure = [e for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.is_run_failure]
        assert failure and "is gone" in failure[-1].message
    finally:
        if child.poll() is None:
            child.kill()
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
