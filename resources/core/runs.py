"""Runs that heal: a run whose process died is marked failed instead of holding the queue.

Dagster's run monitoring (dagster_home/dagster.yaml) fails runs stuck starting or cancelling, but
it can only see a dead worker through the run launcher's health check, and the local
DefaultRunLauncher has none; and `make run` / `make promote` execute in process, so no launcher
knows their process at all. After a `kill -9` such a run stayed STARTED forever and, with
`max_concurrent_runs: 2`, every later queued run (UI, schedule, sensor) waited behind it.

The sweep (at the start of `make run` / `make promote`, and every minute by the `heal_dead_runs`
sensor under `make dev`) finds each active run's process and reports the run failed when that
process is gone, which frees the queue and the run's pool:

* in-process runs carry ``lakehouse/host`` and ``lakehouse/pid`` tags (``process_tags``); only
  runs on this host are judged;
* runs a local DefaultRunLauncher started record their worker's pid in Dagster's own
  "Started process for run (pid: N)" event; that launcher only starts workers on this machine.

A pid the kernel has since given to another process is not mistaken for the run: a process that
started after the run did is not its process. A zombie counts as dead.
"""

from __future__ import annotations

import os
import socket

import dagster as dg
import psutil

PID_TAG, HOST_TAG = "lakehouse/pid", "lakehouse/host"
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
# Clock granularity of process start times (1/100 s) plus the run record's own rounding.
START_SLACK_S = 2.0


def process_tags() -> dict[str, str]:
    """Tags for an in-process run: which process on which host executes it."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def process_alive(pid: int, run_started: float | None = None) -> bool:
    """Whether ``pid`` still runs and (when ``run_started`` is given) started before the run did."""
    if pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):  # killed, not yet reaped
            return False
        started = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # exists, owned by someone else
        return True
    return run_started is None or started <= run_started + START_SLACK_S


def _launched_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid Dagster recorded for a launched run's worker ("Started process for run")."""
    for entry in reversed(instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)):
        if entry.message.startswith("Started process for run"):
            pid = entry.dagster_event.engine_event_data.metadata.get("pid")
            return int(pid.value) if pid is not None and str(pid.value).isdigit() else None
    return None


def run_process(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of the process on this host that executes ``run``; None if not judged here."""
    if run.remote_job_origin is None:  # executed in process (execute_in_process)
        pid = run.tags.get(PID_TAG, "")
        return int(pid) if pid.isdigit() and run.tags.get(HOST_TAG) == socket.gethostname() else None
    if isinstance(instance.run_launcher, dg.DefaultRunLauncher):  # a local subprocess of the code server
        return _launched_worker_pid(instance, run.run_id)
    return None  # another launcher's workers are watched by run monitoring


def sweep_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every active run whose process on this host is gone; return their ids."""
    host, healed = socket.gethostname(), []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        pid = run_process(instance, run)
        if pid is None or pid == os.getpid() or process_alive(pid, record.start_time):
            continue
        instance.report_run_failed(
            run,
            f"process {pid} on {host} that executed this run is gone "
            "(killed or crashed); marked failed so the queue moves on",
        )
        healed.append(run.run_id)
    return healed


def heal_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name="heal_dead_runs",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks failed the runs (make run, make promote, runs launched locally) whose process died.",
    )
    def heal_dead_runs(context: dg.SensorEvaluationContext):
        healed = sweep_dead_runs(context.instance)
        return dg.SkipReason(f"marked failed: {', '.join(healed)}" if healed else "no dead run")

    return heal_dead_runs
