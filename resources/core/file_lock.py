"""An exclusive lock on a local file (flock): writers in several processes of one machine take
turns. Released when the block ends or the process dies (kill -9 included), so a crash never
leaves a stale lock behind."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: Path | str) -> Iterator[None]:
    """Hold ``path`` (created if missing) exclusively for the block, waiting for other holders."""
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
