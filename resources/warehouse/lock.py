"""The pipeline's warehouse, a DuckLake, and the lock that keeps it single-writer.

The warehouse is a DuckLake: a SQLite catalog (``warehouse.sqlite``) and parquet data files
(``warehouse/``). Readers see a committed snapshot and never block a writer or wait for one (the
feature inputs are read in one transaction, the publisher pins a snapshot); two writers on one
catalog would conflict, so every process that writes it (dbt, maintenance) takes this lock first,
and two Dagster runs queue instead of failing. Analysts never open it: they read the published
catalog.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from resources.core.file_lock import LockBusy, exclusive
from resources.core.object_store import register_object_store
from resources.core.pseudonym import load_key, register_udf
from resources.core.settings import Settings
from resources.core.duckdb_connect import WAREHOUSE_ALIAS, attach_ducklake, connect


WarehouseBusy = LockBusy  # the name callers know


@contextmanager
def warehouse_lock(settings: Settings, timeout_s: float = 3600.0, poll_s: float = 0.5) -> Iterator[None]:
    settings.ensure()
    with exclusive(settings.lock_path, timeout_s, poll_s, holder=str(settings.warehouse_catalog)):
        yield


@contextmanager
def open_warehouse(settings: Settings, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with the warehouse attached and in use (``curated.fct_flights`` resolves to
    it). A writer must hold ``warehouse_lock``. Staging views call the pseudonymize UDF."""
    # Staging views read `raw/...` relative to the root (see dbt_project/profiles.yml).
    conn = connect(search_path=settings.local_root,
                   # the bound dbt's connections have (dbt_project/profiles.yml)
                   config={"memory_limit": os.environ.get("LAKEHOUSE_DUCKDB_MEMORY", "3GB"),
                           "temp_directory": str(settings.local_root / ".duckdb_tmp")})
    try:
        if settings.remote:  # data files and the raw zone on s3:// (resources/core/object_store.py)
            register_object_store(conn, force=True)
        attach_ducklake(conn, settings.warehouse_metadata, settings.warehouse_data, WAREHOUSE_ALIAS,
                        read_only=read_only)
        conn.execute(f"use {WAREHOUSE_ALIAS}")
        # Timestamps with time zone come out labelled UTC (the scores' schema), whatever the
        # machine's zone is called ("Etc/UTC" here) or is.
        conn.execute("set TimeZone = 'UTC'")
        register_udf(conn, load_key(settings))
        yield conn
    finally:
        conn.close()
