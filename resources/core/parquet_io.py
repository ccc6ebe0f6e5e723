"""Atomic files in the lakehouse, on a local folder or on object storage.

A reader sees the old file or the new one, never half of one. Locally a file is written beside its
target and renamed over it (rename is atomic within a filesystem). Object stores have no rename,
but a single PUT (or a completed multipart upload) is atomic per object: the writer streams to
the final key and the object appears whole when the upload completes, or not at all when the
writer dies first. Paths are ``pathlib.Path`` for a local root and ``upath.UPath`` (fsspec's
s3fs) for ``LAKEHOUSE_ROOT=s3://...`` (resources/core/settings.py).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable
from glob import escape as glob_escape
from pathlib import Path
from typing import BinaryIO

import polars as pl


def is_local(path) -> bool:
    """True for a local file; False for an object-store path (upath.UPath on s3://)."""
    return isinstance(path, Path)


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """``write(fh)`` fills the file. Locally it writes a temporary beside the target and renames it
    over; on object storage it streams one upload to the key."""
    if not is_local(path):
        with path.open("wb") as fh:
            write(fh)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _remove_dead_temporaries(path)
    return path


def _remove_dead_temporaries(path: Path) -> None:
    """Temporaries of ``path`` a killed writer left (``kill -9`` between open and rename): removed
    by the next successful write once their process is gone, so none outlives a rebuild."""
    for stale in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        middle = stale.name[len(path.name) + 2 : -len(".tmp")].split(".")
        if len(middle) == 2 and middle[0].isdigit():
            from resources.core.runs import process_alive

            if process_alive(int(middle[0])):
                continue  # a live writer's
        elif time.time() - stale.stat().st_mtime < 600:  # an unnamed writer's: only when clearly old
            continue
        stale.unlink(missing_ok=True)


def write_parquet_atomic(df: pl.DataFrame, path: Path) -> Path:
    return write_atomic(path, lambda fh: df.write_parquet(fh, compression="zstd", statistics=True))


def write_text_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def upload_file_atomic(local: Path, path: Path) -> Path:
    """Put a finished local file (a DuckDB version, a generated page) at ``path``."""
    with open(local, "rb") as src:
        return write_atomic(path, lambda fh: shutil.copyfileobj(src, fh, 1 << 20))


def append_lines(path: Path, lines: list[str]) -> None:
    """Append whole lines to a log. Locally one O_APPEND write and fsync (a concurrent writer's lines
    land before or after, never inside). Object stores cannot append: the object is rewritten
    whole (read, add, one PUT), so writers of one log must be serialised by the caller's lock
    (every log here is written under the run's partition or registry lock)."""
    payload = "".join(line.rstrip("\n") + "\n" for line in lines).encode("utf-8")
    if not payload:
        return
    if not is_local(path):
        old = path.read_bytes() if path.exists() else b""
        path.write_bytes(old + payload)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            # All or nothing: a short write (a full disk) would leave half a line that every later
            # reader takes for tampering, so the file is cut back to where it was and the error raised.
            written = os.write(fd, payload)
            if written != len(payload):
                raise OSError(errno.ENOSPC, f"wrote {written} of {len(payload)} bytes", str(path))
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            os.fsync(fd)
            raise
    finally:
        os.close(fd)


def copy_file(src: Path, dst: Path) -> None:
    """Copy a file (hard link where the filesystem allows; a server-side copy on object storage)."""
    if not is_local(dst) and not is_local(src) and src.protocol == dst.protocol:
        src.fs.copy(str(src), str(dst))
        return
    if is_local(src) and is_local(dst):
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
            return
        except OSError:  # another filesystem or no hard links: a copy
            shutil.copy2(src, dst)
            return
    with src.open("rb") as fin, dst.open("wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def read_parquet(path: Path, **kwargs) -> pl.DataFrame:
    if is_local(path):
        return pl.read_parquet(path, **kwargs)
    with path.open("rb") as fh:
        return pl.read_parquet(fh, **kwargs)


# Files read at once by read_parquet_many. A day file costs ~4 ms to open and decode however small
# it is (a year of features: 365 files, 0.90 s one after the other); polars decodes outside the
# GIL, so threads overlap them: 0.46 s with 4 threads, 0.14 -> 0.04 s for a month (measured
# 2026-12-02 on 2 cores, another job running). On object storage each file is also a round trip.
READ_THREADS = 4


def read_parquet_many(paths: list[Path], **kwargs) -> list[pl.DataFrame]:
    """``read_parquet`` of each path, in order, several at a time."""
    if len(paths) <= 1:
        return [read_parquet(p, **kwargs) for p in paths]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(READ_THREADS, len(paths))) as pool:
        return list(pool.map(lambda p: read_parquet(p, **kwargs), paths))


def remove_if_exists(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def sha256_file(path: Path) -> str:
    """Content hash of a file, read in 1 MiB chunks (artifacts, archived batches, backups, landings)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
