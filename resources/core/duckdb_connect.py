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

import importlib.util
import os
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
    return {"extension_directory": str(extension_directory()), "autoinstall_known_extensions": False,
            "allow_unsigned_extensions": False}


def connect(database: str | Path = ":memory:", read_only: bool = False, config: dict | None = None,
            search_path: str | Path | None = None) -> duckdb.DuckDBPyConnection:
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
            f"your own: export its tables with the DuckDB that wrote it first. ({exc})") from exc
    if search_path is not None:
        try:
            con.execute("set file_search_path = ?", [str(search_path)])
        except BaseException:
            con.close()
            raise
    return con
