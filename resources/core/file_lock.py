"""Exclusive locks on local files (the ``filelock`` library, flock underneath): writers in several
processes of one machine take turns. Released when the block ends or the process dies (kill -9
included), so a crash never leaves a stale lock behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


class LockBusy(TimeoutError):
    pass


@contextmanager
def exclusive(path: Path | str, timeout_s: float = -1, poll_s: float = 0.05, holder: str = "") -> Iterator[None]:
    """Hold ``path`` (created if missing, and kept) exclusively for the block, waiting for other
    holders: forever by default, else at most ``timeout_s`` seconds (then ``LockBusy``, naming
    ``holder`` or the path)."""
    # preserve_lock_file: removing it on release would let a waiter that opened the old inode and a
    # newcomer that created a new one both hold "the" lock; no soft fallback: a lock file that a
    # crash leaves behind would then block every later run.
    lock = FileLock(str(path), preserve_lock_file=True, fallback_to_soft=False)
    try:
        lock.acquire(timeout=timeout_s, poll_interval=poll_s)
    except Timeout:
        raise LockBusy(f"{holder or path} stayed locked by another run for {timeout_s:.0f}s") from None
    try:
        yield
    finally:
        lock.release()
