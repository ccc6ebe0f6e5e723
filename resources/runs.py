"""Runs that heal: an in-process run whose process died is marked failed.

Dagster's run monitoring (dagster_home/dagster.yaml) watches runs a run launcher started. `make run`
and `make promote` execute in process, so no launcher knows their process: after a `kill -9` they
stayed STARTED forever and, with `max_concurrent_runs: 2`, every later queued run waited behind
them. They are tagged with their host and pid; a sweep (at the start of `make run` /
`make promote`, and every minute by the `heal_dead_runs` sensor under `make dev`) reports any such
run whose process is gone as failed, which frees the queue and its pool slots.
"""

from __future__ import annotations

import os
import socket

import dagster as dg

PID_TAG, HOST_TAG = "lakehouse/pid", "lakehouse/host"
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def process_tags() -> dict[str, str]:
    """Tags for an in-process run: which process on which host executes it."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def sweep_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-progress run tagged with a dead process on this host; return their ids."""
    host, healed = socket.gethostname(), []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS, tags={HOST_TAG: host})):
        pid = run.tags.get(PID_TAG, "")
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            instance.report_run_failed(run, f"process {pid} on {host} that executed this run is gone "
                                            "(killed or crashed); marked failed so the queue moves on")
            healed.append(run.run_id)
    return healed


def heal_sensor() -> dg.SensorDefinition:
    @dg.sensor(name="heal_dead_runs", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Marks failed the in-process runs (make run, make promote) whose process died.")
    def heal_dead_runs(context: dg.SensorEvaluationContext):
        healed = sweep_dead_runs(context.instance)
        return dg.SkipReason(f"marked failed: {', '.join(healed)}" if healed else "no dead in-process run")

    return heal_dead_runs
