"""Opening a published catalog version as analysts do: read-only, confined, its data files
reachable only through the read-only filesystem (resources/catalog/read_only_files.py)."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import duckdb

from resources.catalog.read_only_files import PREFIX, ReadOnlyFiles
from resources.core.duckdb_connect import connect, sql_str
from resources.core.settings import Settings

ALIAS = "analytics"  # the name analyst connections attach a version under


def attach_version(con: duckdb.DuckDBPyConnection, settings: Settings, path: Path) -> None:
    """Attach a published version read-only as ``analytics``: its data files through the
    read-only filesystem, the version file through a one-off link that is removed at once, so
    neither the lake's folder nor the version's own path is among the files the connection may
    open once access is closed (DuckDB keeps the path of every attached database readable:
    ``DETACH`` and a new ``ATTACH`` of it would otherwise open it writable)."""
    if settings.remote:
        from resources.core.object_store import filesystem

        fs = filesystem()
    else:
        from fsspec.implementations.local import LocalFileSystem

        fs = LocalFileSystem()
    con.register_filesystem(ReadOnlyFiles(fs, str(settings.warehouse_data)))
    with tempfile.TemporaryDirectory(prefix="catalog-") as folder:
        link = Path(folder) / f"{uuid.uuid4().hex}.duckdb"
        os.symlink(path, link)
        con.execute(
            f"attach {sql_str('ducklake:' + str(link))} as {ALIAS} "
            f"(read_only, data_path {sql_str(PREFIX)}, override_data_path true)"
        )


def close_access(con: duckdb.DuckDBPyConnection, own: Path | None = None) -> None:
    """No file beyond the lake's (read-only) and ``own`` from here on, and no setting changed
    again: DuckDB checks neither the profiler's output file nor its own temporary folder against
    the allowed directories (an analyst's ``SET profiling_output = '<any file>'`` overwrote a data
    file of the lake; spills went to ``.tmp/`` under the process's working folder)."""
    spill = own / ".tmp" if own else Path(tempfile.gettempdir()) / f"duckdb-catalog-{uuid.uuid4().hex}"
    con.execute("set temp_directory = ?", [str(spill)])
    allowed = [PREFIX, *([str(own) + "/"] if own else [])]
    con.execute("set allowed_directories = ?", [allowed])
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


def connect_version(settings: Settings, path: Path) -> duckdb.DuckDBPyConnection:
    """A published version, read-only, in use (``curated.fct_flights`` resolves in it), with no
    access to any other file: the raw zone, the warehouse's catalog or a key cannot be read
    through it, and nothing can be written."""
    con = connect()
    try:
        attach_version(con, settings, path)
        con.execute(f"use {ALIAS}")
        close_access(con)
    except BaseException:
        con.close()
        raise
    return con
