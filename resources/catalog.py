"""The analyst catalog: ``analytics.duckdb``, a small DuckDB file of views over published parquet.

Analysts open it read-only and never touch the pipeline's warehouse, so they cannot block a run
and a run cannot give them a lock error. Each publish:

1. exports the warehouse's published schemas to ``published/<version>/<schema>/<table>.parquet``
   (a new directory per version, so files a reader is scanning never change under it);
2. writes a new catalog file beside the old one and renames it over ``analytics.duckdb``
   (atomic: a new connection sees the old version or the new one, never a mix);
3. keeps the newest ``KEEP_VERSIONS`` versions, so a session holding an older catalog open
   keeps working through that many further publishes.
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from resources.settings import Settings
from resources.warehouse import open_warehouse, warehouse_lock

# warehouse schema -> catalog schema; intermediate and seeds stay private to the pipeline.
PUBLISHED_SCHEMAS = {"staging": "staging", "curated": "curated", "snapshots": "curated"}
KEEP_VERSIONS = 5


@dataclass(frozen=True)
class ExternalView:
    """A catalog view over parquet the pipeline writes outside the warehouse (e.g. ML scores)."""

    schema: str
    name: str
    parquet_glob: str
    description: str = ""
    query: str | None = None  # a full SELECT instead of read_parquet(parquet_glob)


@dataclass
class PublishResult:
    version: str
    catalog_path: Path
    row_counts: dict[str, int] = field(default_factory=dict)
    bytes_published: int = 0


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _export_warehouse(settings: Settings, version_dir: Path) -> dict[str, Path]:
    exported: dict[str, Path] = {}
    with warehouse_lock(settings), open_warehouse(settings, read_only=True) as wh:
        tables = wh.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in (select unnest(?)) order by 1, 2",
            [list(PUBLISHED_SCHEMAS)],
        ).fetchall()
        for schema, table in tables:
            target = version_dir / PUBLISHED_SCHEMAS[schema] / f"{table}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            wh.execute(
                f'copy (select * from "{schema}"."{table}") to {_sql_str(str(target))} '
                "(format parquet, compression zstd)"
            )
            exported[f"{PUBLISHED_SCHEMAS[schema]}.{table}"] = target
    return exported


def _has_files(pattern: str) -> bool:
    return bool(glob.glob(pattern))


def publish_catalog(settings: Settings, external: list[ExternalView] | tuple = ()) -> PublishResult:
    settings.ensure()
    version = datetime.now(timezone.utc).strftime("v%Y%m%dT%H%M%S%fZ")
    version_dir = settings.published_dir / version
    exported = _export_warehouse(settings, version_dir)

    tmp = settings.catalog_path.with_name(f".{settings.catalog_path.name}.{uuid.uuid4().hex}.tmp")
    result = PublishResult(version=version, catalog_path=settings.catalog_path)
    try:
        con = duckdb.connect(str(tmp))
        views = [(*name.split("."), str(path), "", None) for name, path in exported.items()]
        views += [(v.schema, v.name, v.parquet_glob, v.description, v.query) for v in external if _has_files(v.parquet_glob)]
        for schema in sorted({v[0] for v in views}):
            con.execute(f'create schema if not exists "{schema}"')
        for schema, name, location, description, query in views:
            select = query or f"select * from read_parquet({_sql_str(location)}, union_by_name = true)"
            con.execute(f'create view "{schema}"."{name}" as {select}')
            if description:
                con.execute(f'comment on view "{schema}"."{name}" is {_sql_str(description)}')
            result.row_counts[f"{schema}.{name}"] = con.execute(
                f'select count(*) from "{schema}"."{name}"'
            ).fetchone()[0]
        # A table of contents analysts can query: what is here and which version it is.
        con.execute("create schema if not exists catalog")
        con.execute(
            "create table catalog.tables as select * from (values "
            + ", ".join(f"({_sql_str(k.split('.')[0])}, {_sql_str(k.split('.')[1])}, {n})" for k, n in result.row_counts.items())
            + ") as t(schema_name, table_name, row_count)"
            if result.row_counts
            else "create table catalog.tables (schema_name varchar, table_name varchar, row_count bigint)"
        )
        con.execute(
            "create table catalog.version as select ? as version, ? as environment, now() as published_at",
            [version, settings.env],
        )
        con.close()
        os.replace(tmp, settings.catalog_path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    result.bytes_published = sum(p.stat().st_size for p in exported.values())
    _collect_old_versions(settings)
    return result


def _collect_old_versions(settings: Settings) -> None:
    versions = sorted(p for p in settings.published_dir.glob("v*") if p.is_dir())
    for old in versions[:-KEEP_VERSIONS]:
        shutil.rmtree(old, ignore_errors=True)


def connect_catalog(settings: Settings) -> duckdb.DuckDBPyConnection:
    """How analysts (and tests) read: read-only, so it never takes a write lock."""
    return duckdb.connect(str(settings.catalog_path), read_only=True)


def connect_sandbox(settings: Settings, user: str | None = None) -> duckdb.DuckDBPyConnection:
    """A writable DuckDB file of the analyst's own with the catalog attached read-only as
    ``analytics``: create any table here without touching the pipeline's data."""
    user = user or os.environ.get("USER") or "analyst"
    settings.sandbox_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.sandbox_dir / f"{user}.duckdb"))
    con.execute(f"attach {_sql_str(str(settings.catalog_path))} as analytics (read_only)")
    return con
