"""Where the lakehouse lives and which environment it belongs to.

Everything the platform writes is placed under one root, resolved from the environment once per
process (never at import time):

- ``LAKEHOUSE_ENV``  = ``dev`` (default) or ``prod``: also selects the dbt target.
- ``LAKEHOUSE_ROOT`` = storage root; defaults to ``<repo>/lakehouse`` for dev and
  ``<repo>/lakehouse-prod`` for prod. A root remembers the environment that created it
  (``.lakehouse_env``) and refuses the other one, so development never writes production data.
  ``s3://bucket/prefix`` puts every zone on S3-compatible storage (endpoint and credentials from
  the standard AWS variables; resources/core/object_store.py). What must be a local file stays
  in a local *state* folder, ``LAKEHOUSE_STATE_DIR`` (default ``<repo>/lakehouse-state/<bucket>/
  <prefix>``): the pipeline's warehouse (a DuckLake: SQLite catalog and data files), the lock files, the
  analyst's copy of the current catalog version and sandboxes. A lost state folder is rebuilt
  from the store (the warehouse by dbt from raw, the catalog by the next publish or a download).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from resources.core import secrets_store
from resources.core.config import LakehouseEnvironment

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
ENVIRONMENTS = ("dev", "prod")
_DEFAULT_ROOTS = {"dev": REPO_ROOT / "lakehouse", "prod": REPO_ROOT / "lakehouse-prod"}
_DEFAULT_REPORTS = {"dev": REPO_ROOT / "reports", "prod": REPO_ROOT / "reports-prod"}
ENV_MARKER = ".lakehouse_env"


def git_revision() -> str:
    """The checkout's short commit, or "nogit" (a copy without git): recorded with what the code built."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        rev = ""
    return rev or "nogit"


class EnvironmentMismatch(RuntimeError):
    """A storage root created for one environment was opened for the other."""


def _remote_root(url: str):
    from resources.core.object_store import root_path

    return root_path(url)


CATALOG_URL_ENV = "LAKEHOUSE_WAREHOUSE_CATALOG"


def checked_catalog_url(url: str | None) -> str | None:
    """A DuckLake metadata catalog: ``sqlite:<path>`` or ``postgres:<connection string>``. It is
    spliced into ATTACH (dbt's profile too), so a quote is refused rather than escaped."""
    if url is None:
        return None
    if not url.startswith(("sqlite:", "postgres:")) or "'" in url or "\n" in url:
        raise ValueError(
            f"{CATALOG_URL_ENV} must be sqlite:<path> or postgres:<connection string> without quotes, got {url!r}"
        )
    return url


def default_state_dir(url: str) -> Path:
    return REPO_ROOT / "lakehouse-state" / url.split("://", 1)[1]


@dataclass(frozen=True)
class Settings:
    root: Path  # a local folder, or an upath.UPath on s3:// (see ``remote``)
    env: str = "dev"
    state: Path | None = None  # local files of an object-storage root; None: the root itself
    # The warehouse DuckLake's metadata catalog when not the local SQLite file: ``postgres:<libpq
    # connection string>`` (LAKEHOUSE_WAREHOUSE_CATALOG), for writers on several machines.
    catalog_url: str | None = None

    @classmethod
    def at(cls, root: str | Path, env: str = "dev", environ: dict[str, str] | None = None) -> Settings:
        """Settings for a root given as a local path or an s3:// URL."""
        environ = dict(os.environ if environ is None else environ)
        text = str(root)
        catalog_url = checked_catalog_url(environ.get(CATALOG_URL_ENV) or None)
        if "://" in text:
            remote = _remote_root(text)
            state = environ.get("LAKEHOUSE_STATE_DIR") or str(default_state_dir(str(remote)))
            return cls(root=remote, env=env, state=Path(state).expanduser().resolve(), catalog_url=catalog_url)
        return cls(root=Path(text).expanduser().resolve(), env=env, catalog_url=catalog_url)

    @property
    def remote(self) -> bool:
        return not isinstance(self.root, Path)

    @property
    def local_root(self) -> Path:
        """Where the files that must be local live (DuckDB files, locks): the root, or the state folder."""
        return self.state if self.state is not None else self.root

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        env = environ.get("LAKEHOUSE_ENV", "dev").strip() or "dev"
        if env not in ENVIRONMENTS:
            raise ValueError(f"LAKEHOUSE_ENV must be one of {ENVIRONMENTS}, got {env!r}")
        return cls.at(environ.get("LAKEHOUSE_ROOT") or str(_DEFAULT_ROOTS[env]), env, environ)

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
    def local_published_dir(self) -> Path:
        """Where catalog versions are written and opened: the published zone itself on a local
        root; on an object-storage root a local copy of the versions uploaded to ``published_dir``."""
        return self.local_root / "published"

    @property
    def sandbox_dir(self) -> Path:
        return self.local_root / "sandbox"  # analysts' own DuckDB files: local to where they work

    @property
    def secrets_dir(self) -> Path:
        """Beside the root, never inside it (resources/core/secrets_store.py)."""
        return secrets_store.secrets_dir(self)

    @property
    def reports_dir(self) -> Path:
        """Evidently HTML: the repo's reports/ for the default roots, else inside the root (tests)."""
        if not self.remote and self.root == _DEFAULT_ROOTS[self.env].resolve():
            return _DEFAULT_REPORTS[self.env]
        return self.root / "reports"

    def report_url(self, path: Path) -> str | None:
        """Where `make dev` serves a report over HTTP (reports_dir on LAKEHOUSE_REPORTS_URL, default
        http://127.0.0.1:3001): a browser opens no file:// link from the Dagster UI's page."""
        if self.remote:
            return None  # on the store: the metadata shows its s3:// address instead
        path = Path(path).resolve()
        if not path.is_relative_to(self.reports_dir.resolve()):
            return None
        base = LakehouseEnvironment.from_environ().reports_url.rstrip("/")
        return f"{base}/{path.relative_to(self.reports_dir.resolve()).as_posix()}"

    @property
    def warehouse_catalog(self) -> Path:
        """The warehouse DuckLake's default metadata catalog, a local SQLite file (writers and
        readers on this machine). Private to the pipeline; analysts use ``catalog_path``."""
        return self.local_root / "warehouse.sqlite"

    @property
    def warehouse_metadata(self) -> str:
        """The catalog as DuckLake names it: the SQLite file, or LAKEHOUSE_WAREHOUSE_CATALOG."""
        return self.catalog_url or f"sqlite:{self.warehouse_catalog}"

    @property
    def warehouse_data(self) -> Path:
        """The warehouse's DuckLake data files (parquet, written once, never edited): in the root,
        so on an s3:// root they are objects in the store, read and written by httpfs."""
        return self.root / "warehouse"

    @property
    def catalog_path(self) -> Path:
        """The current catalog version for analysts (on an object-storage root, a local copy of
        the version ``published/CURRENT.json`` names: resources/catalog/publish.py)."""
        return self.local_root / "analytics.duckdb"

    @property
    def lock_path(self) -> Path:
        return self.local_root / ".warehouse.lock"

    def ensure(self) -> Settings:
        """Create the root and claim it for this environment, or refuse a foreign root."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.state is not None:
            self.state.mkdir(parents=True, exist_ok=True)
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
        from resources.core.duckdb_connect import EXTENSIONS_ENV, extension_directory

        env = {
            "LAKEHOUSE_ROOT": str(self.local_root),  # DuckDB's file_search_path (profiles.yml)
            "LAKEHOUSE_ENV": self.env,
            CATALOG_URL_ENV: self.warehouse_metadata,
            "LAKEHOUSE_WAREHOUSE_DATA": str(self.warehouse_data) + "/",
            "LAKEHOUSE_RAW_DIR": str(self.raw_dir),
            EXTENSIONS_ENV: str(extension_directory()),  # profiles.yml config_options
        }
        if self.remote:  # the sources read the store (the dbt plugin registers s3fs for it)
            env["LAKEHOUSE_RAW_URL"] = str(self.raw_dir)
        return env


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in os.environ for the block (dagster-dbt's subprocess inherits os.environ), then
    the previous environment back: one run's root (e.g. an s3:// raw URL) never leaks into the next
    run of a long-lived process."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
