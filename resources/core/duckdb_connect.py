"""Every DuckDB connection of the project is opened here, with DuckDB's own extensions.

The extensions (ducklake, httpfs, postgres, sqlite) come from the ``duckdb-ext-*`` packages pinned
in requirements.lock: DuckDB's official, signed binaries for the pinned DuckDB, installed with the
rest of the environment, so nothing is downloaded at run time (the machines reach only the
package registries). A connection looks for them in the packaged folder only, never installs one
by itself, and keeps DuckDB's signature check (``allow_unsigned_extensions`` stays off), so a
modified extension file is refused when loaded (tests/test_duckdb_connect.py).

A machine that may reach DuckDB's extension repository can use it instead by pointing
``LAKEHOUSE_DUCKDB_EXTENSIONS`` at another folder (e.g. ``~/.duckdb/extensions``) after
``INSTALL ducklake`` there; signatures are checked the same way.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import sqlite3
from pathlib import Path

import duckdb

EXTENSIONS_ENV = "LAKEHOUSE_DUCKDB_EXTENSIONS"


class ExtensionsMissing(RuntimeError):
    pass


class NewerStorage(RuntimeError):
    """A DuckDB file written by a newer DuckDB (e.g. a lakehouse built before the 1.4 pin)."""


def extension_directory() -> Path:
    """The folder DuckDB loads extensions from: the packaged one unless the environment names another."""
    given = os.environ.get(EXTENSIONS_ENV)
    if given:
        return Path(given).expanduser()
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionsMissing("DuckDB's extension packages (duckdb-ext-*) are not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "extensions"


def extension_config() -> dict[str, object]:
    """Connect-time options (also dbt-duckdb's ``config_options``: they must be set before ATTACH)."""
    return {
        "extension_directory": str(extension_directory()),
        "autoinstall_known_extensions": False,
        "allow_unsigned_extensions": False,
    }


def connect(
    database: str | Path = ":memory:",
    read_only: bool = False,
    config: dict | None = None,
    search_path: str | Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the packaged extensions. ``search_path``: where relative file
    names resolve (DuckDB's ``file_search_path``; set after connecting, as DuckDB 1.4 accepts it
    only as a session setting)."""
    try:
        con = duckdb.connect(str(database), read_only=read_only, config={**extension_config(), **(config or {})})
    except duckdb.IOException as exc:
        if "created with an newer version" not in str(exc) and "newer version of DuckDB" not in str(exc):
            raise
        raise NewerStorage(
            f"{database} was written by a newer DuckDB than the pinned {duckdb.__version__} and cannot be opened "
            "(DuckDB files are not readable by older versions). The warehouse and the published catalog are "
            "derived: move them aside and `make run` rebuilds them from the raw zone; a sandbox file of "
            f"your own: export its tables with the DuckDB that wrote it first. ({exc})"
        ) from exc
    try:
        con.execute("set enable_progress_bar = false")  # a session setting in 1.4, like the next
        if search_path is not None:
            con.execute("set file_search_path = ?", [str(search_path)])
    except BaseException:
        con.close()
        raise
    return con


def sql_str(value: str) -> str:
    """A SQL string literal (for statements that take no parameters, such as ATTACH)."""
    return "'" + value.replace("'", "''") + "'"


# The name the warehouse DuckLake is attached under, everywhere (dbt's profile too): the views
# dbt stores in it name their inputs with it ("warehouse"."staging"."stg_..."), so another alias
# would break them.
WAREHOUSE_ALIAS = "warehouse"


def prepare_sqlite_catalog(metadata: str) -> None:
    """Put a SQLite metadata catalog (``sqlite:<path>``) in write-ahead-log mode, creating the file
    if needed. In SQLite's default mode a reader's open transaction makes a writer's commit fail at
    once ("database is locked"), and a DuckLake reader holds one for each of its transactions; in
    WAL mode readers and the one writer never block each other. The mode is stored in the file, so
    this is done once; while another process holds a catalog still in the old mode it is left for
    the next call. The WAL file (``<path>-wal``) is part of the catalog: copy the folder, or use
    ``copy_sqlite_catalog``, never the ``.sqlite`` file alone."""
    if not metadata.startswith("sqlite:"):
        return
    path = Path(metadata.split(":", 1)[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=1.0)) as db:
        if db.execute("pragma journal_mode").fetchone()[0].lower() != "wal":
            try:
                db.execute("pragma journal_mode = wal")
            except sqlite3.OperationalError:  # in use by another process: the next call switches it
                pass
        if db.execute("pragma application_id").fetchone()[0] == 0:
            _new_catalog_id(db)


def _new_catalog_id(db: sqlite3.Connection) -> None:
    """Mark a catalog file with a random id (SQLite's ``application_id``; DuckLake leaves it
    alone): a connection held on a catalog that was removed and made again at the same path, or
    restored over, can tell (``sqlite_catalog_id``). The inode alone cannot: the sqlite
    extension does not keep the file open between transactions, so a new file may get the old
    one's inode, and a held DuckLake then wrote its cached catalog into the new file (a crash)."""
    try:
        db.execute(f"pragma application_id = {secrets.randbelow(2**31 - 1) + 1}")
    except sqlite3.DatabaseError:  # read-only here, or busy: the next writer's call marks it
        pass


def sqlite_catalog_id(path: Path) -> int | None:
    """The id ``prepare_sqlite_catalog`` gave the catalog file (0 before it did), None if there is
    no file. Never creates one."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=1.0)) as db:
            return db.execute("pragma application_id").fetchone()[0]
    except sqlite3.OperationalError:
        return None


def copy_sqlite_catalog(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite catalog, its write-ahead log included (SQLite's backup API)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        _new_catalog_id(dst)  # a copy is another catalog to a connection held on the target's path


def attach_ducklake(
    con: duckdb.DuckDBPyConnection,
    metadata: str,
    data: str | Path,
    alias: str,
    read_only: bool = False,
    snapshot: int | None = None,
) -> None:
    """Attach the DuckLake whose metadata catalog is ``metadata`` (``sqlite:<path>`` or
    ``postgres:<connection string>``) and whose files are under ``data`` (a folder or an s3://
    prefix: the connection needs the store's secret first), as ``alias``. The data path is given
    on every attach (OVERRIDE_DATA_PATH): the catalog stores the path it was created with, and a
    copied or moved lakehouse must read its own files. ``snapshot``: the catalog as of that
    snapshot (time travel; read-only)."""
    prepare_sqlite_catalog(metadata)
    options = [f"data_path {sql_str(str(data).rstrip('/') + '/')}", "override_data_path true"]
    if read_only or snapshot is not None:
        options.append("read_only")
    if snapshot is not None:
        options.append(f"snapshot_version {int(snapshot)}")
    con.execute(f'attach {sql_str("ducklake:" + metadata)} as "{alias}" ({", ".join(options)})')
