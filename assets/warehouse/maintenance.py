"""The warehouse DuckLake's maintenance as an asset, nightly by automation."""

from datetime import timedelta

import dagster as dg

from assets.automation import nightly_maintenance
from assets.common import DATA_ENGINEERING, WAREHOUSE_POOL
from resources.core.lakehouse_resource import LakehouseResource
from resources.warehouse.maintenance import DEFAULT_KEEP, maintain

MAINTENANCE_KEY = dg.AssetKey(["warehouse", "maintenance"])


class MaintenanceConfig(dg.Config):
    # Snapshots younger than this stay readable. 0 also deletes files that a publish or reader that
    # pinned a snapshot a moment ago may still be reading: only for a lakehouse nothing reads.
    keep_days: float = DEFAULT_KEEP / timedelta(days=1)


def build_maintenance_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=MAINTENANCE_KEY,
        group_name="curated",
        pool=WAREHOUSE_POOL,
        automation_condition=nightly_maintenance(),
        kinds={"ducklake"},
        owners=[DATA_ENGINEERING],
        description="DuckLake maintenance of the warehouse: merges small files, expires snapshots "
        "older than keep_days and deletes the files no kept snapshot reads, and files no snapshot ever "
        "committed (left by a writer killed mid-write).",
    )
    def warehouse_maintenance(config: MaintenanceConfig, lakehouse: LakehouseResource) -> dg.MaterializeResult:
        done = maintain(lakehouse.settings(), timedelta(days=config.keep_days))
        return dg.MaterializeResult(
            metadata={
                "live_files": done.files_after,
                "live_files_before": done.files_before,
                "live_bytes": done.bytes_after,
                "snapshots_expired": done.snapshots_expired,
                "files_deleted": done.files_deleted,
                "orphaned_files_deleted": done.orphans_deleted,
            }
        )

    return warehouse_maintenance
