"""The only place that imports Dagster's private modules (``dagster._…``).

`make run` drives partition backfills in its own process (assets/bootstrap.py: one run per
backfill, no daemon), and tests stand in for the daemon and the webserver's workspace; Dagster has
no public API for either. Everything else uses ``import dagster as dg``. These names can move in
any Dagster release: ``tests/test_configuration.py`` imports them and checks the installed Dagster
is the minor version they were written against (``PINNED``, also pinned in pyproject.toml).
"""

from dagster._core.events import EngineEventData
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, BACKFILL_ID_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget, WorkspaceFileTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

PINNED = "1.13."
# An instance that runs a launched run synchronously in the launching process (bootstrap's backfills).
IN_PROCESS_INSTANCE = {
    "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
    "run_launcher": {
        "module": "dagster._core.launcher.sync_in_memory_run_launcher",
        "class": "SyncInMemoryRunLauncher",
    },
}

__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "BACKFILL_ID_TAG",
    "IN_PROCESS_INSTANCE",
    "PINNED",
    "BulkActionStatus",
    "EngineEventData",
    "InProcessCodeLocationOrigin",
    "InProcessWorkspaceLoadTarget",
    "InstanceRef",
    "LoadableTargetOrigin",
    "PartitionBackfill",
    "QueuedRunCoordinatorDaemon",
    "RegisteredCodeLocationOrigin",
    "RemoteJobOrigin",
    "RemoteRepositoryOrigin",
    "WorkspaceFileTarget",
    "WorkspaceProcessContext",
    "execute_backfill_iteration",
    "make_new_backfill_id",
]
