"""The Evidently UI workspace: one project with its dashboard, one run per report (a re-run
replaces it)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from resources.core.file_lock import exclusive
from resources.core.parquet_io import write_text_atomic
from resources.core.settings import Settings
from resources.monitoring.drift import PREDICTION
from resources.monitoring.paths import monitoring_dir
from resources.monitoring.samples import IN_SAMPLE, OUT_OF_SAMPLE

# Evidently is imported lazily inside the functions below, after this: no telemetry.
os.environ.setdefault("DO_NOT_TRACK", "1")

PROJECT = "flight-delay-monitoring"


def workspace_dir(settings: Settings) -> Path:
    # Evidently's UI workspace writes through local file APIs: on an object-storage root it is
    # local state (the HTML reports and the metrics, the monitoring outputs, are on the store).
    if settings.remote:
        return settings.local_root / "monitoring" / "evidently"
    return monitoring_dir(settings) / "evidently"


def _dashboard():
    """Panels for the series the index charts: drift share, p_late drift and mean, late rate,
    out-of-sample ROC AUC (and the in-sample one on its own, labelled panel)."""
    from evidently.sdk.models import DashboardModel, DashboardTabModel, PanelMetric
    from evidently.sdk.panels import line_plot_panel

    panels = [
        line_plot_panel(
            "ROC AUC, out of sample",
            [PanelMetric(legend="out of sample", metric="RocAuc", tags=["quality", OUT_OF_SAMPLE])],
            size="half",
        ),
        line_plot_panel(
            "ROC AUC, IN-SAMPLE (trained/selected on: not a quality estimate)",
            [PanelMetric(legend="in-sample", metric="RocAuc", tags=["quality", IN_SAMPLE])],
            size="half",
        ),
        line_plot_panel(
            "Drift share (features past their training range)",
            [
                PanelMetric(
                    legend="share", metric="DriftedColumnsCount", tags=["drift"], metric_labels={"value_type": "share"}
                )
            ],
            size="half",
        ),
        line_plot_panel(
            "p_late PSI vs trailing 6 weeks",
            [PanelMetric(legend="p_late", metric="ValueDrift", tags=["drift"], metric_labels={"column": PREDICTION})],
            size="half",
        ),
        line_plot_panel(
            "Late rate and mean p_late",
            [
                PanelMetric(legend="late rate", metric="MeanValue", tags=["quality"], metric_labels={"column": "late"}),
                PanelMetric(
                    legend="mean p_late", metric="MeanValue", tags=["drift"], metric_labels={"column": PREDICTION}
                ),
            ],
        ),
    ]
    return DashboardModel(tabs=[DashboardTabModel(title="Monitoring", panels=[p.id for p in panels])], panels=panels)


_WORKSPACES: ContextVar[dict | None] = ContextVar("evidently_workspaces", default=None)


@contextmanager
def workspace_session() -> Iterator[None]:
    """Reuse one open Evidently workspace for every report stored inside the block. Opening one
    parses every snapshot already stored (0.13 s each: 3 s with 23 months stored, measured
    2026-12-02), which was paid again for each of a year's 24 reports."""
    token = _WORKSPACES.set({})
    try:
        yield
    finally:
        _WORKSPACES.reset(token)


def keep_workspaces_open() -> None:
    """What ``workspace_session`` does for a block, for the rest of this process (a report
    worker's): each workspace is opened once and reused."""
    _WORKSPACES.set({})


def _workspace(path: str):
    from evidently.ui.workspace import Workspace

    opened = _WORKSPACES.get()
    if opened is None:
        return Workspace.create(path)
    if path not in opened:
        opened[path] = Workspace.create(path)
    return opened[path]


def workspace_project(settings: Settings) -> str:
    """The monitoring project's id, created with its dashboard the first time (and given the
    current panels when it has older ones)."""
    ws = _workspace(str(workspace_dir(settings)))
    projects = ws.search_project(PROJECT)
    project = projects[0] if projects else ws.create_project(PROJECT, description="Flight delay model monitoring")
    dashboard = _dashboard()
    if not {p.title for p in dashboard.panels} <= {p.title for p in ws.get_dashboard(project.id).panels}:
        ws.save_dashboard(project.id, dashboard)  # a new project, or one from before these panels
    return str(project.id)


def workspace_lock(workspace: str):
    Path(workspace).mkdir(parents=True, exist_ok=True)
    return exclusive(Path(workspace) / ".write.lock")


def add_to_workspace(workspace: str, project_id: str, snapshot, name: str) -> str:
    """Store ``snapshot`` as a new run named ``name``; returns its id. ~2-3 s for a drift month,
    mostly Evidently's JSON encoding. Under a lock: opening a workspace reads every stored run, and
    would read a run another process is halfway through writing."""
    with workspace_lock(workspace):
        ref = _workspace(workspace).add_run(project_id, snapshot, name=name)
    return str(getattr(ref, "id", ref))


def record_run(settings: Settings, project_id: str, name: str, run_id: str) -> str:
    """Make ``run_id`` the run of report ``name`` (runs.json), deleting the run it replaces. One
    writer at a time: this reads, changes and rewrites runs.json."""
    ws = _workspace(str(workspace_dir(settings)))
    runs_file = workspace_dir(settings) / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else {}
    if name in runs and runs[name] != run_id:
        try:
            with workspace_lock(str(workspace_dir(settings))):
                ws.delete_run(project_id, runs[name])
        except Exception:  # already gone: nothing to replace
            pass
    runs[name] = run_id
    write_text_atomic(runs_file, json.dumps(runs, indent=2, sort_keys=True))
    return run_id


def store_in_workspace(settings: Settings, snapshot, name: str) -> str:
    """Keep one run per report name in the Evidently workspace (a re-run replaces it); the
    snapshot's timestamp is the start of the period it covers, so the dashboard's time axis is the
    data's months, not the day the report ran."""
    project_id = workspace_project(settings)
    run_id = add_to_workspace(str(workspace_dir(settings)), project_id, snapshot, name)
    return record_run(settings, project_id, name, run_id)
