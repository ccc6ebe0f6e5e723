"""Time travel over the analyst catalog: every publish recorded, every kept version addressable.

Each publish appends one line to ``published/_history.jsonl`` (version, when, code version,
production model, which tables changed and by how many rows) once its file is complete, and the
version carries the whole history as ``catalog.versions``. ``connect_catalog_as_of`` opens a kept
version read-only, by name or as of a timestamp.

Retention: a version file is removed only when it is outside the newest
``LAKEHOUSE_CATALOG_KEEP`` (default 5) *and* older than ``LAKEHOUSE_CATALOG_KEEP_DAYS`` days
(default 0): both the count and the age protect it. The history lines stay (a few hundred bytes
per publish), so ``catalog.versions`` still says what an expired version held.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from resources.catalog.attach import connect_version
from resources.core.config import LakehouseEnvironment
from resources.core.parquet_io import append_lines
from resources.core.settings import Settings, git_revision

HISTORY = "_history.jsonl"
VERSION_FORMAT = "v%Y%m%dT%H%M%S%fZ"


class VersionNotKept(LookupError):
    pass


def retention(environ: dict | None = None) -> tuple[int, float]:
    """How many versions to keep, and for how many days (LAKEHOUSE_CATALOG_KEEP / _KEEP_DAYS)."""
    config = LakehouseEnvironment.from_environ(environ)
    return config.catalog_keep, config.catalog_keep_days


def published_at(version: str) -> datetime:
    return datetime.strptime(version, VERSION_FORMAT).replace(tzinfo=timezone.utc)


def expired(versions: list[str], now: datetime, environ: dict | None = None) -> list[str]:
    """Versions (sorted oldest first) that retention removes."""
    keep, days = retention(environ)
    return [v for v in versions[:-keep] if now - published_at(v) > timedelta(days=days)]


def code_version() -> str:
    return git_revision()


def history(settings: Settings) -> list[dict]:
    path = settings.published_dir / HISTORY
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_history(settings: Settings, entry: dict) -> None:
    append_lines(settings.published_dir / HISTORY, [json.dumps(entry, sort_keys=True)])  # under the publish lock


def changes(before: dict[str, int], after: dict[str, int]) -> list[dict]:
    """Tables added, removed or with another row count."""
    out = []
    for table in sorted(set(before) | set(after)):
        if before.get(table) != after.get(table):
            out.append({"table": table, "rows_before": before.get(table), "rows_after": after.get(table)})
    return out


def write_versions_table(con: duckdb.DuckDBPyConnection, entries: list[dict], schema: str = "catalog") -> None:
    con.execute(
        f"create or replace table {schema}.versions (version varchar, published_at timestamptz, environment varchar, "
        "code_version varchar, production_model varchar, tables_changed integer, "
        "changes json, rows_total bigint, warehouse_snapshot bigint)"
    )
    con.executemany(
        f"insert into {schema}.versions values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                e["version"],
                e["published_at"],
                e["environment"],
                e["code_version"],
                e.get("production_model"),
                len(e["changes"]),
                json.dumps(e["changes"]),
                e["rows_total"],
                e.get("warehouse_snapshot"),
            ]
            for e in entries
        ],
    )


def kept_versions(settings: Settings) -> list[str]:
    return sorted(p.stem for p in settings.published_dir.glob("v*.duckdb"))


def connect_catalog_as_of(
    settings: Settings, version: str | None = None, at: datetime | str | None = None
) -> duckdb.DuckDBPyConnection:
    """A kept version, read-only and with no file access: by ``version`` name, or the newest one
    published at or before ``at`` (a datetime or ISO text; naive means UTC)."""
    kept = kept_versions(settings)
    if version is None and at is None:
        raise ValueError("give a version (see catalog.versions) or a timestamp")
    if version is None:
        when = datetime.fromisoformat(at) if isinstance(at, str) else at
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        earlier = [v for v in kept if published_at(v) <= when]
        if not earlier:
            raise VersionNotKept(
                f"no kept catalog version was published at or before {when.isoformat()}; "
                f"kept: {', '.join(kept) or 'none'}"
            )
        version = earlier[-1]
    if version not in kept:
        raise VersionNotKept(
            f"catalog version {version!r} is not kept (retention: LAKEHOUSE_CATALOG_KEEP, "
            f"LAKEHOUSE_CATALOG_KEEP_DAYS); kept: {', '.join(kept) or 'none'}"
        )
    return connect_version(settings, local_version(settings, version))


def local_version(settings: Settings, version: str) -> Path:
    """A kept version as a local file DuckDB can open: on an object-storage root, downloaded once
    into the local copy of the published zone (a version never changes after its upload)."""
    path = settings.local_published_dir / f"{version}.duckdb"
    if settings.remote and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.download.tmp")
        try:
            remote = settings.published_dir / path.name
            remote.fs.get_file(str(remote), str(tmp))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path
