"""The pipeline's private DuckDB file and the lock that keeps it single-writer.

DuckDB allows one read-write process per file, and that writer blocks even read-only opens from
other processes. Every process that touches ``warehouse.duckdb`` (dbt, the catalog publisher)
takes this lock first, so two Dagster runs queue instead of failing with a lock error. Analysts
never open this file: they read the separately published ``analytics.duckdb``.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from resources.core.object_store import register_object_store
from resources.core.pseudonym import load_key, register_udf
from resources.core.settings import Settings
from resources.core.duckdb_connect import connect


class WarehouseBusy(TimeoutError):
    pass


@contextmanager
def warehouse_lock(settings: Settings, timeout_s: float = 3600.0, poll_s: float = 0.5) -> Iterator[None]:
    settings.ensure()
    with open(settings.lock_path, "a+") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WarehouseBusy(
                        f"{settings.warehouse_path} stayed locked by another run for {timeout_s:.0f}s"
                    ) from None
                time.sleep(poll_s)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def open_warehouse(settings: Settings, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Caller must hold ``warehouse_lock``. Staging views call the pseudonymize UDF."""
    # Staging views read `raw/...` relative to the root (see dbt_project/profiles.yml).
    conn = connect(settings.warehouse_path, read_only=read_only, search_path=settings.local_root,
                   # the bound dbt's connections have (dbt_project/profiles.yml)
                   config={"memory_limit": os.environ.get("LAKEHOUSE_DUCKDB_MEMORY", "3GB")})
    try:
        register_udf(conn, load_key(settings))
        if settings.remote:  # the staging views read s3:// (resources/core/object_store.py)
            register_object_store(conn, force=True)
        yield conn
    finally:
        conn.close()
