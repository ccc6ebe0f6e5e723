"""The lake's data files as analyst connections see them: readable, never writable.

DuckDB confines a connection by folder, not by read or write: a connection allowed to read the
lake's data folder may also ``COPY ... TO`` a file there, overwriting a data file every reader
shares. Analyst connections therefore reach the data files only through this filesystem
(registered on the connection, ``published://lake/<path>``), which passes reads of named files to the real
folder (local, or the object store through fsspec) and refuses listing, writing, removing or
renaming; the real folder itself stays outside the connection's allowed directories.
"""

from __future__ import annotations

from typing import Any

from fsspec import AbstractFileSystem

PROTOCOL = "published"
PREFIX = f"{PROTOCOL}://lake/"  # the data path analyst connections attach the catalog with


class ReadOnlyFiles(AbstractFileSystem):
    protocol = (PROTOCOL,)
    cachable = False  # one instance per connection: each maps to its own lakehouse's folder
    root_marker = ""

    def __init__(self, fs: AbstractFileSystem, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fs = fs
        self.base = base.rstrip("/")

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        if path.startswith(f"{PROTOCOL}://"):
            path = path[len(PROTOCOL) + 3 :]
        return path.rstrip("/")

    def _real(self, path: str) -> str:
        rel = self._strip_protocol(path)
        if rel != "lake" and not rel.startswith("lake/"):
            raise FileNotFoundError(path)
        rel = rel[len("lake") :].lstrip("/")
        if any(part == ".." for part in rel.split("/")):  # never above the data folder
            raise PermissionError(f"{path}: outside the published lake")
        return f"{self.base}/{rel}" if rel else self.base

    def _open(self, path, mode="rb", **kwargs):
        if mode != "rb":
            raise PermissionError(f"{path}: the published lake is read-only")
        return self.fs.open(self._real(path), "rb")

    def info(self, path, **kwargs):
        return {**self.fs.info(self._real(path)), "name": self._strip_protocol(path)}

    def ls(self, path, detail=True, **kwargs):
        # DuckLake opens the files its catalog names; nothing needs to list the folder, and a
        # listing would show files of snapshots the version does not publish.
        raise PermissionError(f"{path}: the published lake is not listed; query its tables")

    def modified(self, path):
        return self.fs.modified(self._real(path))

    def _refuse(self, *args, **kwargs):
        raise PermissionError("the published lake is read-only")

    rm = rm_file = _rm = rmdir = mkdir = makedirs = touch = mv = cp_file = pipe_file = put_file = _refuse
