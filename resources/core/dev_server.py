"""`make dev`: `dagster dev` that stops when asked.

`dagster dev` turns SIGTERM into its Ctrl-C path, then waits up to 60 s for each of its webserver
and daemon processes; measured here, `make dev` was still serving 30 s after SIGTERM. This runs it
in its own process group, passes SIGTERM/SIGINT on, and after a grace period ends the whole group
(webserver, daemon, code servers), so the port and the instance are free within ~10 s.

Beside it, the reports folder is served read-only on 127.0.0.1:3001 (Python's http.server), so
the report links in asset metadata open in the browser: a page served over http may not open
file:// links.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

from resources.core.config import LakehouseEnvironment
from resources.core.settings import Settings

GRACE_SECONDS = 8.0


def main(argv: list[str]) -> int:
    child = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "dagster"), "dev", *argv], start_new_session=True
    )
    settings = Settings.from_env()
    files = None
    # On an object-storage root the reports are on the store (each asset's metadata shows its
    # s3:// address) and there is no local folder to serve.
    if not settings.remote:
        settings.reports_dir.mkdir(parents=True, exist_ok=True)
        port = urlsplit(LakehouseEnvironment.from_environ().reports_url).port or 3001
        files = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(settings.reports_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    stopping: list[float] = []

    def stop(signum, _frame):
        if not stopping:
            stopping.append(time.monotonic())
            os.killpg(child.pid, signal.SIGINT)  # dagster dev's own clean shutdown first

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while child.poll() is None:
        if stopping and time.monotonic() - stopping[0] > GRACE_SECONDS:
            os.killpg(child.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    try:
        os.killpg(child.pid, signal.SIGKILL)  # nothing of the group outlives us
    except ProcessLookupError:
        pass
    child.wait()
    if files is not None:
        files.terminate()
        files.wait()
    return 0 if stopping else (child.returncode or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
