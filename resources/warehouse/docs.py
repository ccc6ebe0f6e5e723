"""`make docs`: dbt's documentation site (models, columns, tests, lineage) as one offline HTML file.

``dbt docs generate --static`` inlines the manifest and catalog into ``static_index.html``: no
server and no network needed (measured: 1.8 MB, ~5 s on the year). With a built warehouse the
catalog adds each column's type and each table's row count (read under the warehouse lock);
without one, the site has descriptions, tests and lineage only. Written to
``<reports>/dbt-docs/index.html``, which `make dev` serves on 127.0.0.1:3001 beside the reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from resources.core.parquet_io import upload_file_atomic
from resources.core.settings import DBT_PROJECT_DIR, Settings
from resources.warehouse.lock import warehouse_lock


def docs_path(settings: Settings) -> Path:
    return settings.reports_dir / "dbt-docs" / "index.html"


def generate_docs(settings: Settings) -> Path:
    target = docs_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    dbt = str(Path(sys.executable).parent / "dbt")
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            dbt,
            "docs",
            "generate",
            "--static",
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            tmp,
            "--quiet",
        ]
        env = {**os.environ, **settings.dbt_env(), "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        if settings.warehouse_catalog.exists():
            with warehouse_lock(settings):
                done = subprocess.run(args, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
        else:
            done = subprocess.run(
                [*args, "--empty-catalog"], cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True
            )
        if done.returncode != 0:
            raise RuntimeError(f"dbt docs generate failed ({done.returncode}): {(done.stdout + done.stderr)[-2000:]}")
        upload_file_atomic(Path(tmp) / "static_index.html", target)
    return target


def main() -> int:
    path = generate_docs(Settings.from_env())
    print(
        f"dbt documentation (offline, one file): {path}\n  served by `make dev` at http://127.0.0.1:3001/dbt-docs/index.html"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
