"""The pipeline's warehouse, a DuckLake, and the lock that keeps it single-writer.

The warehouse is a DuckLake: a SQLite catalog (``warehouse.sqlite``) and parquet data files
(``warehouse/``). Readers see a committed snapshot and never block a writer or wait for one (the
feature inputs are read in one transaction, the publisher pins a snapshot); two writers on one
catalog would conflict, so every process that writes it (dbt, maintenance) takes this lock first,
and two Dagster runs queue instead of failing. Analysts never open it: they read the published
catalog.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from resources.core.config import LakehouseEnvironment
from resources.core.duckdb_connect import (
    WAREHOUSE_ALIAS,
    attach_ducklake,
    connect,
    prepare_sqlite_catalog,
    sqlite_catalog_id,
)
from resources.core.file_lock import LockBusy, exclusive
from resources.core.object_store import register_object_store
from resources.core.pseudonym import load_key, register_udf
from resources.core.settings import Settings

WarehouseBusy = LockBusy  # the name callers know


@contextmanager
def warehouse_lock(settings: Settings, timeout_s: float = 3600.0, poll_s: float = 0.5) -> Iterator[None]:
    settings.ensure()
    with exclusive(settings.lock_path, timeout_s, poll_s, holder=str(settings.warehouse_catalog)):
        prepare_sqlite_catalog(settings.warehouse_metadata)  # before dbt, whose profile attaches it too
        yield


def _connection(settings: Settings, read_only: bool, key: bytes) -> duckdb.DuckDBPyConnection:
    # Staging views read `raw/...` relative to the root (see dbt_project/profiles.yml).
    conn = connect(
        search_path=settings.local_root,
        # the bound dbt's connections have (dbt_project/profiles.yml)
        config={
            "memory_limit": LakehouseEnvironment.from_environ().duckdb_memory,
            "temp_directory": str(settings.local_root / ".duckdb_tmp"),
        },
    )
    try:
        if settings.remote:  # data files and the raw zone on s3:// (resources/core/object_store.py)
            register_object_store(conn, force=True)
        attach_ducklake(
            conn, settings.warehouse_metadata, settings.warehouse_data, WAREHOUSE_ALIAS, read_only=read_only
        )
        conn.execute(f"use {WAREHOUSE_ALIAS}")
        # Timestamps with time zone come out labelled UTC (the scores' schema), whatever the
        # machine's zone is called ("Etc/UTC" here) or is.
        conn.execute("set TimeZone = 'UTC'")
        register_udf(conn, key)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def open_warehouse(settings: Settings, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with the warehouse attached and in use (``curated.fct_flights`` resolves to
    it). A writer must hold ``warehouse_lock``. Staging views call the pseudonymize UDF."""
    conn = _connection(settings, read_only, load_key(settings))
    try:
        yield conn
    finally:
        conn.close()


# Connections this process keeps open (readers, and one writer), newest last: opening one
# (attaching the lake, loading its catalog) takes ~0.4 s on the year and ~1.3 s at SF=100, a read
# on a held one ~0.01 s, and training and the backtest read their windows a week at a time,
# hundreds of times.
_HELD: OrderedDict[tuple, tuple[duckdb.DuckDBPyConnection, threading.Lock, tuple | None]] = OrderedDict()
_HELD_LOCK = threading.Lock()
MAX_HELD = 4


def _catalog_identity(settings: Settings) -> tuple | None:
    """Which catalog file a connection opened: a lakehouse removed and built again at the same
    path is another catalog, and a connection held on the old one would read the old data."""
    if not settings.warehouse_metadata.startswith("sqlite:"):
        return None
    try:
        st = settings.warehouse_catalog.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, sqlite_catalog_id(settings.warehouse_catalog)


@contextmanager
def _held(settings: Settings, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """This process's held connection of that kind, for the block; another thread waits for it.
    A writer that raised a DuckDB error (a lost commit, a full disk) is closed rather than handed
    out again; a reader's errors (a table not there yet) leave it usable."""
    key_bytes = load_key(settings)
    key = (
        os.getpid(),
        read_only,
        settings.warehouse_metadata,
        str(settings.warehouse_data),
        str(settings.local_root),
        hashlib.sha256(key_bytes).hexdigest(),
    )
    with _HELD_LOCK:
        entry = _HELD.get(key)
        if entry is not None and entry[2] != _catalog_identity(settings):
            _HELD.pop(key)
            _close_when_free(entry)
            entry = None
        if entry is None:
            con = _connection(settings, read_only, key_bytes)
            entry = (con, threading.Lock(), _catalog_identity(settings))
            _HELD[key] = entry
            while len(_HELD) > MAX_HELD:
                _close_when_free(_HELD.popitem(last=False)[1])
        _HELD.move_to_end(key)
    con, lock, _ = entry
    with lock:
        try:
            yield con
        except duckdb.Error:
            if read_only:
                raise
            with _HELD_LOCK:
                if _HELD.get(key) is entry:
                    _HELD.pop(key)
            con.close()
            raise


@contextmanager
def warehouse_reader(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only warehouse connection, held open by this process and reused, for one
    transaction: everything read in the block comes from one committed snapshot, the newest when
    the block starts. Never blocks a writer (the SQLite catalog is in WAL mode)."""
    with _held(settings, read_only=True) as con:
        con.execute("begin transaction")
        try:
            yield con
        finally:
            con.execute("rollback")


@contextmanager
def warehouse_writer(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write warehouse connection under ``warehouse_lock``, held open by this process
    between writes. Attaching the lake and loading its catalog cost ~1.3 s at SF=100 (0.8 s and
    0.5 s), paid before by every day group of features, every scored week and backtest month.
    The lock is taken per block, so other writers still interleave; the caller runs its own
    transaction, and each one starts from the newest committed snapshot."""
    with warehouse_lock(settings), _held(settings, read_only=False) as con:
        yield con


def _close_when_free(entry: tuple) -> None:
    con, lock, _ = entry
    if lock.acquire(blocking=False):  # in use by another thread: it is dropped, not closed under it
        try:
            con.close()
        finally:
            lock.release()
