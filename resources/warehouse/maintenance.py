"""Keeping the warehouse DuckLake small: DuckLake's own maintenance, nothing of ours.

Every dbt build commits new parquet files and keeps the replaced ones for time travel. Left
alone, the data path grows with every run and a daily model gains a small file per day. The
maintenance merges small files, expires snapshots older than the retention, and deletes the
files no kept snapshot reads (``ducklake_merge_adjacent_files``, ``ducklake_expire_snapshots``,
``ducklake_cleanup_old_files``). It holds the warehouse lock, so no writer commits meanwhile.

A published catalog version reads the warehouse's files as of its snapshot
(resources/catalog/publish.py), so no snapshot from the oldest kept version's on is expired,
whatever the retention says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

import duckdb

from resources.catalog import versions
from resources.core.duckdb_connect import WAREHOUSE_ALIAS
from resources.core.settings import Settings
from resources.warehouse.lock import open_warehouse, warehouse_lock

DEFAULT_KEEP = timedelta(days=7)


@dataclass(frozen=True)
class Maintenance:
    files_before: int
    files_after: int
    bytes_before: int
    bytes_after: int
    snapshots_expired: int
    files_deleted: int
    orphans_deleted: int = 0


def _live_files(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Data files any kept snapshot reads, and their bytes."""
    n, size = con.execute(
        "select count(*), coalesce(sum(file_size_bytes), 0) "
        f"from __ducklake_metadata_{WAREHOUSE_ALIAS}.ducklake_data_file where end_snapshot is null"
    ).fetchone()
    return int(n), int(size)


def _oldest_published(settings: Settings) -> int | None:
    """The oldest warehouse snapshot a kept catalog version reads."""
    kept = set(versions.kept_versions(settings))
    snapshots = [
        e["warehouse_snapshot"]
        for e in versions.history(settings)
        if e["version"] in kept and e.get("warehouse_snapshot") is not None
    ]
    return min(snapshots) if snapshots else None


def maintain(settings: Settings, keep: timedelta = DEFAULT_KEEP) -> Maintenance:
    if keep < timedelta(0):
        raise ValueError(f"keep must not be negative (got {keep})")
    with warehouse_lock(settings), open_warehouse(settings, read_only=False) as con:
        files_before, bytes_before = _live_files(con)
        con.execute(f"call ducklake_merge_adjacent_files('{WAREHOUSE_ALIAS}')")
        cutoff = datetime.now(timezone.utc) - keep
        # The snapshots to expire are chosen here, by id: DuckLake 0.3 on a SQLite catalog orders
        # an ``older_than`` instant wrongly against the catalog's own of the same day (measured: a
        # cutoff at 15:00 expired snapshots taken at 16:05), which would expire what a kept
        # catalog version reads.
        protected = _oldest_published(settings)
        ids = [
            r[0]
            for r in con.execute(
                f"select snapshot_id from {WAREHOUSE_ALIAS}.snapshots() where snapshot_time < ? "
                f"and snapshot_id < (select max(snapshot_id) from {WAREHOUSE_ALIAS}.snapshots()) "
                "and snapshot_id < coalesce(?, 9223372036854775807)",
                [cutoff, protected],
            ).fetchall()
        ]
        expired = (
            con.execute(f"call ducklake_expire_snapshots('{WAREHOUSE_ALIAS}', versions => ?)", [ids]).fetchall()
            if ids
            else []
        )
        # Files no kept snapshot reads: the grace ``keep`` gives readers still on a replaced file
        # is measured from the end of the day before the cutoff (the same misordering); keeping
        # nothing deletes them all.
        if keep == timedelta(0):
            cleanup = "cleanup_all => true"
        else:
            day_before = datetime.combine(cutoff.date(), time.min, timezone.utc) - timedelta(microseconds=1)
            cleanup = f"older_than => '{day_before.isoformat()}'::timestamptz"
        deleted = con.execute(f"call ducklake_cleanup_old_files('{WAREHOUSE_ALIAS}', {cleanup})").fetchall()
        # Files no snapshot ever committed: what a writer killed mid-transaction (kill -9, a full
        # disk) had already written. Only as old as ``keep``, so a write in flight keeps its files.
        older = f"'{cutoff.isoformat()}'::timestamptz"
        orphans = con.execute(
            f"call ducklake_delete_orphaned_files('{WAREHOUSE_ALIAS}', older_than => {older})"
        ).fetchall()
        files_after, bytes_after = _live_files(con)
    return Maintenance(files_before, files_after, bytes_before, bytes_after, len(expired), len(deleted), len(orphans))
