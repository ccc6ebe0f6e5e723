"""The analyst catalog: ``analytics.duckdb``, one self-contained DuckDB file per published version.

Analysts open it read-only and never touch the pipeline's warehouse, so they cannot block a run
and a run cannot give them a lock error. Each publish:

1. writes ``published/<version>.duckdb``: the warehouse's published schemas and the ML and
   monitoring tables copied in as *tables* (no view over external files: the file holds no path,
   so a copied or moved lakehouse, or an analyst connection with file access disabled, reads it
   all). It is written under a temporary name and renamed into place only when complete;
2. links it as ``analytics.duckdb`` (atomic rename: a new connection sees the old version or the
   new one, never a mix);
3. keeps the newest ``KEEP_VERSIONS`` complete versions and removes unfinished temporaries.
   A session that holds a version open keeps reading it until it closes, however many publishes
   follow: removing a file does not take it from a process that has it open.
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
from resources.pseudonym import load_key, register_udf
from resources.warehouse import warehouse_lock

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


def _has_files(pattern: str) -> bool:
    return bool(glob.glob(pattern))


def _copy_warehouse(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[tuple[str, str]]:
    """Copy the warehouse's published schemas into the catalog being written (under the lock)."""
    con.execute(f"attach {_sql_str(str(settings.warehouse_path))} as wh (read_only)")
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = 'wh' and table_schema in (select unnest(?)) order by 1, 2",
        [list(PUBLISHED_SCHEMAS)],
    ).fetchall()
    copied = []
    for schema, table in tables:
        target = PUBLISHED_SCHEMAS[schema]
        con.execute(f'create schema if not exists "{target}"')
        con.execute(f'create table "{target}"."{table}" as select * from wh."{schema}"."{table}"')
        copied.append((target, table))
    con.execute("detach wh")
    return copied


def publish_catalog(settings: Settings, external: list[ExternalView] | tuple = ()) -> PublishResult:
    settings.ensure()
    version = datetime.now(timezone.utc).strftime("v%Y%m%dT%H%M%S%fZ")
    settings.published_dir.mkdir(parents=True, exist_ok=True)
    final = settings.published_dir / f"{version}.duckdb"
    tmp = settings.published_dir / f".{version}.{uuid.uuid4().hex}.tmp"
    result = PublishResult(version=version, catalog_path=settings.catalog_path)
    try:
        # The staging views call pseudonymize() and read raw/ relative to the root: the copy runs
        # on a connection with the UDF and the root as file_search_path, under the warehouse lock.
        con = duckdb.connect(str(tmp), config={"file_search_path": str(settings.root)})
        register_udf(con, load_key(settings))
        with warehouse_lock(settings):
            names = _copy_warehouse(con, settings)
        for v in external:
            if not _has_files(v.parquet_glob):
                continue
            select = v.query or f"select * from read_parquet({_sql_str(v.parquet_glob)}, union_by_name = true)"
            con.execute(f'create schema if not exists "{v.schema}"')
            con.execute(f'create table "{v.schema}"."{v.name}" as {select}')
            if v.description:
                con.execute(f'comment on table "{v.schema}"."{v.name}" is {_sql_str(v.description)}')
            names.append((v.schema, v.name))
        for schema, name in names:
            result.row_counts[f"{schema}.{name}"] = con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]
        # A table of contents analysts can query: what is here and which version it is.
        con.execute("create schema if not exists catalog")
        con.execute("create table catalog.tables (schema_name varchar, table_name varchar, row_count bigint)")
        if result.row_counts:
            con.executemany("insert into catalog.tables values (?, ?, ?)",
                            [[*k.split(".", 1), n] for k, n in result.row_counts.items()])
        con.execute(
            "create table catalog.version as select ? as version, ? as environment, now() as published_at",
            [version, settings.env],
        )
        con.execute("checkpoint")
        con.close()
        os.replace(tmp, final)  # complete versions only ever appear under their final name
        link = settings.catalog_path.with_name(f".{settings.catalog_path.name}.{uuid.uuid4().hex}.tmp")
        os.link(final, link)
        os.replace(link, settings.catalog_path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    result.bytes_published = final.stat().st_size
    _collect_old_versions(settings)
    return result


def _collect_old_versions(settings: Settings) -> None:
    """Keep the newest KEEP_VERSIONS complete versions; drop what an interrupted publish left
    (temporaries, and the parquet folders of the earlier layout)."""
    for leftover in settings.published_dir.glob(".*.tmp*"):
        leftover.unlink(missing_ok=True)
    for old_layout in (p for p in settings.published_dir.glob("v*") if p.is_dir()):
        shutil.rmtree(old_layout, ignore_errors=True)
    versions = sorted(settings.published_dir.glob("v*.duckdb"))
    for old in versions[:-KEEP_VERSIONS]:
        old.unlink(missing_ok=True)


def connect_catalog(settings: Settings) -> duckdb.DuckDBPyConnection:
    """How analysts (and tests) read: read-only, and with no access to any other file (the catalog
    holds every table itself), so the raw zone or a key cannot be read through it."""
    return duckdb.connect(str(settings.catalog_path), read_only=True, config={"enable_external_access": False})


def connect_sandbox(settings: Settings, user: str | None = None) -> duckdb.DuckDBPyConnection:
    """A writable DuckDB file of the analyst's own with the catalog attached read-only as
    ``analytics``: create any table here without touching the pipeline's data. File access is
    confined to the sandbox folder (for the analyst's own exports); the raw zone, the warehouse
    and keys are out of reach."""
    user = user or os.environ.get("USER") or "analyst"
    settings.sandbox_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.sandbox_dir / f"{user}.duckdb"))
    con.execute(f"attach {_sql_str(str(settings.catalog_path))} as analytics (read_only)")
    con.execute("set allowed_directories = [?]", [str(settings.sandbox_dir) + "/"])
    con.execute("set enable_external_access = false")
    return con
