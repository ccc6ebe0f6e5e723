"""Where the lakehouse lives and which environment it belongs to.

Everything the platform writes is placed under one root, resolved from the environment once per
process (never at import time):

- ``LAKEHOUSE_ENV``  = ``dev`` (default) or ``prod``: also selects the dbt target.
- ``LAKEHOUSE_ROOT`` = storage root; defaults to ``<repo>/lakehouse`` for dev and
  ``<repo>/lakehouse-prod`` for prod. A root remembers the environment that created it
  (``.lakehouse_env``) and refuses the other one, so development never writes production data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
ENVIRONMENTS = ("dev", "prod")
_DEFAULT_ROOTS = {"dev": REPO_ROOT / "lakehouse", "prod": REPO_ROOT / "lakehouse-prod"}
_DEFAULT_REPORTS = {"dev": REPO_ROOT / "reports", "prod": REPO_ROOT / "reports-prod"}
ENV_MARKER = ".lakehouse_env"
REPORTS_URL = "http://127.0.0.1:3001"  # `make dev` serves reports_dir here (resources/core/dev_server.py)


class EnvironmentMismatch(RuntimeError):
    """A storage root created for one environment was opened for the other."""


@dataclass(frozen=True)
class Settings:
    root: Path
    env: str = "dev"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        environ = dict(os.environ if environ is None else environ)
        env = environ.get("LAKEHOUSE_ENV", "dev").strip() or "dev"
        if env not in ENVIRONMENTS:
            raise ValueError(f"LAKEHOUSE_ENV must be one of {ENVIRONMENTS}, got {env!r}")
        root = environ.get("LAKEHOUSE_ROOT") or str(_DEFAULT_ROOTS[env])
        return cls(root=Path(root).expanduser().resolve(), env=env)

    # --- zones -------------------------------------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        return self.root / "raw"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def published_dir(self) -> Path:
        return self.root / "published"

    @property
    def sandbox_dir(self) -> Path:
        return self.root / "sandbox"

    @property
    def secrets_dir(self) -> Path:
        """Beside the root, never inside it (resources/core/secrets_store.py)."""
        from resources.core.secrets_store import secrets_dir

        return secrets_dir(self)

    @property
    def reports_dir(self) -> Path:
        """Evidently HTML: the repo's reports/ for the default roots, else inside the root (tests)."""
        if self.root == _DEFAULT_ROOTS[self.env].resolve():
            return _DEFAULT_REPORTS[self.env]
        return self.root / "reports"

    def report_url(self, path: Path) -> str | None:
        """Where `make dev` serves a report over HTTP (reports_dir on LAKEHOUSE_REPORTS_URL, default
        http://127.0.0.1:3001): a browser opens no file:// link from the Dagster UI's page."""
        path = Path(path).resolve()
        if not path.is_relative_to(self.reports_dir.resolve()):
            return None
        base = os.environ.get("LAKEHOUSE_REPORTS_URL", REPORTS_URL).rstrip("/")
        return f"{base}/{path.relative_to(self.reports_dir.resolve()).as_posix()}"

    @property
    def warehouse_path(self) -> Path:
        """Private to the pipeline (single writer). Analysts use ``catalog_path``."""
        return self.root / "warehouse.duckdb"

    @property
    def catalog_path(self) -> Path:
        return self.root / "analytics.duckdb"

    @property
    def lock_path(self) -> Path:
        return self.root / ".warehouse.lock"

    def ensure(self) -> "Settings":
        """Create the root and claim it for this environment, or refuse a foreign root."""
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / ENV_MARKER
        if marker.exists():
            owner = marker.read_text().strip()
            if owner != self.env:
                raise EnvironmentMismatch(
                    f"{self.root} belongs to LAKEHOUSE_ENV={owner}; refusing to use it as "
                    f"{self.env}. Point LAKEHOUSE_ROOT at a separate directory."
                )
        else:
            marker.write_text(self.env + "\n")
        return self

    def dbt_env(self) -> dict[str, str]:
        """Environment the dbt subprocess reads in profiles.yml and the source definitions."""
        return {
            "LAKEHOUSE_ROOT": str(self.root),
            "LAKEHOUSE_ENV": self.env,
            "LAKEHOUSE_WAREHOUSE": str(self.warehouse_path),
            "LAKEHOUSE_RAW_DIR": str(self.raw_dir),
        }
