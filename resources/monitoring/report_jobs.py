"""Evidently reports of a backfill computed side by side, one process per core.

A month's drift verdict, daily rows and headline figures are cheap and computed first, in order;
what is left is Evidently's HTML (a drift month ~7 s on the year, idle: per-column statistics and
plotly figures for 43 columns), which depends only on the month's own samples. Months are
independent, so a year's 24 reports spread over the machine's cores: the monitoring step of
`make run` was one core busy for ~100 s while the other idled.

Each report is computed, written (HTML, then its sidecar) and stored as a new run of the Evidently
UI workspace in a worker process (a run is a file of its own); what two writers would race on is
done here alone: creating the project before the workers start, and, in month order, recording
which run is each report's (runs.json) and deleting the run it replaces. One report (a nightly increment's month)
is computed in process: starting a worker (~4 s of imports) would cost more than it saves.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from resources.core.config import LakehouseEnvironment
from resources.core.settings import Settings
from resources.monitoring.report_files import sidecar_path, write_report
from resources.monitoring.workspace import (
    add_to_workspace,
    keep_workspaces_open,
    record_run,
    store_in_workspace,
    workspace_dir,
    workspace_project,
)


@dataclass(frozen=True)
class ReportJob:
    """One Evidently report to compute: ``build()`` returns its snapshot (a picklable partial of
    drift_report or quality_report over the month's samples); the rest is how it is written."""

    kind: str  # "drift" or "quality"
    period: str
    reports_dir: Path
    build: Callable
    summary: dict
    title: str


# Default cap: a worker holds Evidently (~300 MB) and a month's samples, and a container may see
# all of its host's cores in os.cpu_count().
MAX_DEFAULT_WORKERS = 4


def report_workers(jobs: int | None = None, environ: dict[str, str] | None = None) -> int:
    """Processes for ``jobs`` reports (None: not known yet): LAKEHOUSE_REPORT_WORKERS, else one
    per core this process may use (at most MAX_DEFAULT_WORKERS), never more than there are
    reports; 1 means in process."""
    wanted = LakehouseEnvironment.from_environ(environ).report_workers
    if wanted is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        wanted = min(cores, MAX_DEFAULT_WORKERS)
    return max(1, wanted if jobs is None else min(wanted, jobs))


def _render(job: ReportJob):
    snapshot = job.build()
    return str(write_report(snapshot, job.reports_dir, job.kind, job.period, job.summary, job.title)), snapshot


# Held while a worker writes a run into the Evidently workspace: Evidently writes the run's JSON
# straight to its final name, and a run cut off mid-file makes the workspace unreadable.
_STORING = threading.Lock()


def _exit_with(parent: int, poll_s: float = 1.0) -> None:
    """End this worker when ``parent`` is gone (never in the middle of storing a run). A worker's
    parent is the forkserver, not the run, and its siblings hold the task queue open: without this,
    after a `kill -9` of the run, workers would compute queued reports and then wait for work
    forever; with it, they, the forkserver and the resource tracker end within ~2 s."""
    while True:
        time.sleep(poll_s)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            _STORING.acquire()
            os._exit(1)
        except PermissionError:  # alive, another user's (a reused pid): keep going
            pass


def _worker_start(parent: int) -> None:
    """Each worker keeps its Evidently workspace open across its reports (opening one parses
    every run already stored), and ends when the run that started it ends."""
    keep_workspaces_open()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="exit-with-run").start()


def _render_in_worker(job: ReportJob, workspace: str, project_id: str) -> tuple[str, str]:
    """Compute, write and store one report in a worker; returns the HTML path and the new run's
    id. Storing the run here is safe (each run is a new file of its own) and is 2-3 s of a drift
    month (Evidently's JSON encoding) that would otherwise queue up in the parent."""
    path, snapshot = _render(job)
    with _STORING:
        return path, add_to_workspace(workspace, project_id, snapshot, f"{job.kind} {job.period}")


class ReportWriter:
    """Takes a run's reports as they are ready (``submit``) and hands back each one's sidecar plus
    ``html_path`` once all are computed and stored in the Evidently workspace (``finish``). From
    the second report on, reports are computed by worker processes while this process goes on
    judging the next months; a lone report is computed in process by ``finish``."""

    def __init__(self, settings: Settings, workers: int | None = None):
        self.settings, self.workers = settings, workers
        self.jobs: list[ReportJob] = []
        self.futures: list = []
        self.pool: ProcessPoolExecutor | None = None
        self.project = self.workspace = ""

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc) -> None:
        """A run that fails between ``submit`` and ``finish`` stops its workers."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def submit(self, job: ReportJob) -> None:
        self.jobs.append(job)
        if self.pool is None and len(self.jobs) == 2:
            workers = self.workers or report_workers()
            if workers > 1:
                # The project exists before any worker adds a run to it (two would create two).
                self.project = workspace_project(self.settings)
                self.workspace = str(workspace_dir(self.settings))
                # forkserver: a fork of this process would copy Dagster's and polars' threads mid-flight.
                self.pool = ProcessPoolExecutor(
                    workers,
                    mp_context=multiprocessing.get_context("forkserver"),
                    initializer=_worker_start,
                    initargs=(os.getpid(),),
                )
                self.futures = [self.pool.submit(_render_in_worker, j, self.workspace, self.project) for j in self.jobs]
        elif self.pool is not None:
            self.futures.append(self.pool.submit(_render_in_worker, job, self.workspace, self.project))

    def finish(self) -> dict[tuple[str, str], dict]:
        jobs, futures, pool = self.jobs, self.futures, self.pool
        self.jobs, self.futures, self.pool = [], [], None
        results = {}
        try:
            # With workers, every report is stored before any replaced run is deleted: a worker
            # opening the workspace reads every run, and one deleted under it is an error.
            outputs = [f.result() for f in futures] if pool is not None else map(_render, jobs)
            for job, (path, stored) in zip(jobs, outputs):
                name = f"{job.kind} {job.period}"
                if pool is None:
                    store_in_workspace(self.settings, stored, name)  # ``stored`` is the snapshot
                else:
                    record_run(self.settings, self.project, name, stored)  # ``stored`` is its run id
                sidecar = json.loads(sidecar_path(job.reports_dir, job.kind, job.period).read_text())
                results[(job.kind, job.period)] = {**sidecar, "html_path": path}
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        return results
