"""A run whose process is killed with SIGKILL is marked failed and no longer holds the queue."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg

from resources.core.dagster_private import (
    EngineEventData,
    QueuedRunCoordinatorDaemon,
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from resources.core.runs import HOST_TAG, IN_PROGRESS, PID_TAG, heal_sensor, process_alive, sweep_dead_runs

PROJECT_INSTANCE = Path(__file__).resolve().parents[1] / "dagster_home" / "dagster.yaml"

RUNNER = textwrap.dedent("""
    import sys
    import dagster as dg
    from assets.definitions import build_definitions
    from assets.jobs import REFERENCE_JOB
    from resources.core.lakehouse_resource import LakehouseResource
    from resources.core.runs import process_tags
    defs = build_definitions(LakehouseResource(root=sys.argv[1], env="dev"))
    defs.resolve_job_def(REFERENCE_JOB).execute_in_process(instance=dg.DagsterInstance.get(), tags=process_tags())
""")


def _dequeuable(instance: dg.DagsterInstance) -> list[str]:
    """What the `make dev` daemon's run queue would launch now (its own selection logic)."""
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    return [r.run_id for r in daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)]


def test_a_killed_in_process_run_is_marked_failed_and_frees_the_queue(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The project's instance config (run monitoring, pools), with one run slot so one dead run blocks.
    config = PROJECT_INSTANCE.read_text()
    assert "max_concurrent_runs: 2" in config
    (home / "dagster.yaml").write_text(config.replace("max_concurrent_runs: 2", "max_concurrent_runs: 1"))
    env = {**os.environ, "DAGSTER_HOME": str(home), "DO_NOT_TRACK": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(tmp_path / "lakehouse")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ["DAGSTER_HOME"], saved = str(home), os.environ.get("DAGSTER_HOME")
    try:
        instance = dg.DagsterInstance.get()
        deadline = time.monotonic() + 120
        while not instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            assert time.monotonic() < deadline and child.poll() is None, "the run never started"
            time.sleep(0.2)
        time.sleep(1.0)  # mid-run
        assert sweep_dead_runs(instance) == []  # a live run is left alone
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        (run,) = instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS))
        assert run.status == dg.DagsterRunStatus.STARTED and run.remote_job_origin is None
        assert run.tags[PID_TAG] == str(child.pid)

        # A run queued from the UI / a sensor: the dead run holds the only slot.
        origin = RemoteJobOrigin(
            RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("lakehouse"), "__repository__"), "ingest__daily"
        )
        queued = instance.add_run(
            dg.DagsterRun(job_name="ingest__daily", status=dg.DagsterRunStatus.QUEUED, remote_job_origin=origin)
        )
        assert _dequeuable(instance) == []  # what blocked the queue forever before

        # The sensor `make dev` runs every minute does the sweep; `make run` does it first thing.
        result = heal_sensor()(dg.build_sensor_context(instance=instance))
        assert run.run_id in str(result)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert _dequeuable(instance) == [queued.run_id]  # the queue moves on
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


def test_a_pid_is_judged_by_the_process_behind_it():
    assert process_alive(os.getpid(), run_started=time.time())
    # The same pid, but the run began long before this process: the kernel reused the number.
    assert not process_alive(os.getpid(), run_started=time.time() - 10 * 365 * 86400)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not process_alive(zombie.pid)  # exited, not yet reaped
    zombie.wait()
    assert not process_alive(zombie.pid)
    assert not process_alive(0) and not process_alive(-1)


def test_runs_of_another_host_or_without_a_pid_are_left_alone(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        for tags in ({PID_TAG: "999999999", HOST_TAG: "another-host"}, {}, {PID_TAG: "x; rm -rf /", HOST_TAG: "h"}):
            instance.add_run(dg.DagsterRun(job_name="j", status=dg.DagsterRunStatus.STARTED, tags=tags))
        assert sweep_dead_runs(instance) == []
        assert instance.get_runs_count(filters=dg.RunsFilter(statuses=IN_PROGRESS)) == 3


def test_a_locally_launched_run_whose_worker_died_is_marked_failed(tmp_path):
    """Runs from the UI / sensors: the local launcher has no health check run monitoring could use."""

    origin = RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("lakehouse"), "__repository__"), "j")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        assert isinstance(instance.run_launcher, dg.DefaultRunLauncher)
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        try:
            # A re-execution from the UI copies the parent's tags: a dead in-process pid tag on a
            # launched run must not count, its own worker's pid does.
            run = instance.add_run(
                dg.DagsterRun(
                    job_name="j",
                    status=dg.DagsterRunStatus.STARTING,
                    remote_job_origin=origin,
                    tags={PID_TAG: "999999999", HOST_TAG: os.uname().nodename},
                )
            )
            instance.report_engine_event(
                f"Started process for run (pid: {worker.pid}).", run, EngineEventData.in_process(worker.pid)
            )
            assert sweep_dead_runs(instance) == []
        finally:
            worker.kill()
            worker.wait()
        assert sweep_dead_runs(instance) == [run.run_id]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
