"""Atomic parquet files: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import polars as pl


def write_parquet_atomic(df: pl.DataFrame, path: Path) -> Path:
    """Write next to the target, then rename over it (rename is atomic within a filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        df.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_if_exists(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def sha256_file(path: Path) -> str:
    """Content hash of a file, read in 1 MiB chunks (artifacts, archived batches, backups, landings)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
