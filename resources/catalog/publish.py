"""The analyst catalog: ``analytics.duckdb``, one self-contained DuckDB file per published version.

Analysts open it read-only and never touch the pipeline's warehouse, so they cannot block a run
and a run cannot give them a lock error. Each publish:

1. writes ``published/<version>.duckdb``: the warehouse's published schemas and the ML and
   monitoring tables copied in as *tables* (no view over external files: the file holds no path,
   so a copied or moved lakehouse, or an analyst connection with file access disabled, reads it
   all). It is written under a temporary name and renamed into place only when complete;
2. links it as ``analytics.duckdb`` (atomic rename: a new connection sees the old version or the
   new one, never a mix);
3. keeps complete versions by retention (resources/catalog/versions.py: the newest 5 by default,
   addressable for time travel) and removes unfinished temporaries.
   A session that holds a version open keeps reading it until it closes, however many publishes
   follow: removing a file does not take it from a process that has it open.
"""

from __future__ import annotations

import glob
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from resources.catalog import versions
from resources.catalog.views import ExternalView
from resources.core.duckdb_connect import WAREHOUSE_ALIAS, attach_ducklake, connect, sql_str
from resources.core.file_lock import exclusive
from resources.core.object_store import register_object_store
from resources.core.parquet_io import sha256_file, upload_file_atomic, write_text_atomic
from resources.core.pseudonym import load_key, register_udf
from resources.core.settings import DBT_PROJECT_DIR, Settings
from resources.ml.lake import LAKE_TABLE_DESCRIPTIONS, ML_SCHEMA
from resources.monitoring.paths import MONITORING_SCHEMA, MONITORING_TABLE_DESCRIPTIONS

# warehouse schema -> catalog schema; intermediate and seeds stay private to the pipeline, and so
# do tables whose name starts with "_" (bookkeeping such as ml._partitions).
PUBLISHED_SCHEMAS = {
    "staging": "staging",
    "curated": "curated",
    "snapshots": "curated",
    ML_SCHEMA: ML_SCHEMA,
    MONITORING_SCHEMA: MONITORING_SCHEMA,
}
TABLE_DESCRIPTIONS = {(ML_SCHEMA, t): d for t, d in LAKE_TABLE_DESCRIPTIONS.items()} | MONITORING_TABLE_DESCRIPTIONS
KEEP_VERSIONS = 5  # the default of LAKEHOUSE_CATALOG_KEEP (resources/catalog/versions.py)
USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


@dataclass
class PublishResult:
    version: str
    catalog_path: Path
    row_counts: dict[str, int] = field(default_factory=dict)
    bytes_published: int = 0
    history_entry: dict = field(default_factory=dict)
    warehouse_snapshot: int | None = None  # the warehouse DuckLake's snapshot this version copied


def has_files(pattern: str) -> bool:
    if "://" in pattern:  # an object-storage root (resources/core/object_store.py)
        from resources.core.object_store import filesystem

        return bool(filesystem().glob(pattern))
    return bool(glob.glob(pattern))


def _copy_warehouse(con: duckdb.DuckDBPyConnection, settings: Settings, result: PublishResult) -> list[tuple[str, str]]:
    """Copy the warehouse's published schemas into the catalog being written, all from one
    snapshot of the warehouse DuckLake (pinned, so a dbt build committing meanwhile is neither
    waited for nor half copied); the snapshot is recorded as ``warehouse_snapshot``."""
    attach_ducklake(con, settings.warehouse_metadata, settings.warehouse_data, WAREHOUSE_ALIAS, read_only=True)
    (result.warehouse_snapshot,) = con.execute(f"select * from {WAREHOUSE_ALIAS}.current_snapshot()").fetchone()
    con.execute(f"detach {WAREHOUSE_ALIAS}")
    attach_ducklake(
        con, settings.warehouse_metadata, settings.warehouse_data, WAREHOUSE_ALIAS, snapshot=result.warehouse_snapshot
    )
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = ? and table_schema in (select unnest(?)) and not starts_with(table_name, '_') "
        "order by 1, 2",
        [WAREHOUSE_ALIAS, list(PUBLISHED_SCHEMAS)],
    ).fetchall()
    copied = []
    for schema, table in tables:
        target = PUBLISHED_SCHEMAS[schema]
        con.execute(f'create schema if not exists "{target}"')
        con.execute(f'create table "{target}"."{table}" as select * from {WAREHOUSE_ALIAS}."{schema}"."{table}"')
        if (schema, table) in TABLE_DESCRIPTIONS:
            con.execute(f'comment on table "{target}"."{table}" is {sql_str(TABLE_DESCRIPTIONS[schema, table])}')
        copied.append((target, table))
    con.execute(f"detach {WAREHOUSE_ALIAS}")
    return copied


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _publish_lock(settings: Settings) -> Iterator[None]:
    """One publish at a time per lakehouse (`make run` in process and a run the UI launched can
    both publish): whatever temporary exists while this is held is an interrupted publish's."""
    with exclusive(settings.local_root / ".publish.lock"):
        yield


# Schemas the platform writes; another team's product may not take one of them over.
PLATFORM_SCHEMAS = {
    "main",
    "staging",
    "intermediate",
    "curated",
    "snapshots",
    "reference",
    "ml",
    "monitoring",
    "catalog",
    "information_schema",
    "pg_catalog",
}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def product_views(settings: Settings) -> tuple[list[ExternalView], list[str]]:
    """Other teams' data products: ``<root>/products/<schema>/<table>.parquet`` becomes
    ``<schema>.<table>`` in the catalog (team code locations write there; the platform imports no
    team code). Returns (views, refusals): a platform schema or a malformed name is refused by name."""
    views, refused = [], []
    for path in sorted((settings.root / "products").glob("*/*.parquet"), key=str):
        schema, name = path.parent.name, path.stem
        if schema in PLATFORM_SCHEMAS or not _NAME.match(schema) or not _NAME.match(name):
            refused.append(f"products/{schema}/{path.name}")
            continue
        views.append(ExternalView(schema, name, str(path), f"Data product of team schema {schema!r}."))
    return views, refused


def publish_catalog(settings: Settings, external: list[ExternalView] | tuple = ()) -> PublishResult:
    settings.ensure()
    local = settings.local_published_dir  # == published_dir on a local root
    local.mkdir(parents=True, exist_ok=True)
    settings.published_dir.mkdir(parents=True, exist_ok=True)
    with _publish_lock(settings):
        _collect_old_versions(settings)  # what a killed publish left never lingers until the next success
        version = datetime.now(timezone.utc).strftime("v%Y%m%dT%H%M%S%fZ")
        final = local / f"{version}.duckdb"
        tmp = local / f".{version}.{uuid.uuid4().hex}.tmp"
        result = PublishResult(version=version, catalog_path=settings.catalog_path)
        try:
            _write_version(tmp, settings, external, version, result)
            # Durable before visible: after a power cut a version is whole or absent, never short.
            _fsync(tmp)
            os.replace(tmp, final)  # complete versions only ever appear under their final name
            os.chmod(final, 0o444)  # a version is immutable: no analyst process opens it for writing
            if settings.remote:
                _commit_remote(settings, final, result.history_entry)
            else:
                versions.append_history(settings, result.history_entry)
            _link_current(settings, final)
            _fsync(local)
            _fsync(settings.local_root)
        finally:
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".wal").unlink(missing_ok=True)
        result.bytes_published = final.stat().st_size
        _collect_old_versions(settings)
    return result


CURRENT = "CURRENT.json"


def _commit_remote(settings: Settings, final: Path, entry: dict) -> None:
    """Object stores have no rename: the version is one upload (whole or absent), then the history
    line, then the pointer ``published/CURRENT.json`` names it. A reader that follows the pointer
    therefore never finds a missing or partial version; a crash before the pointer leaves the
    previous version current and an orphan upload that retention removes."""
    upload_file_atomic(final, settings.published_dir / final.name)
    versions.append_history(settings, entry)
    pointer = {
        "version": final.stem,
        "sha256": sha256_file(final),
        "bytes": final.stat().st_size,
        "published_at": entry["published_at"],
    }
    write_text_atomic(settings.published_dir / CURRENT, json.dumps(pointer, sort_keys=True))


def current_pointer(settings: Settings) -> dict | None:
    path = settings.published_dir / CURRENT
    return json.loads(path.read_text()) if path.exists() else None


def _link_current(settings: Settings, final: Path) -> None:
    """``analytics.duckdb`` becomes ``final`` in one rename: new connections see the old version or
    the new one, never a mix."""
    link = settings.catalog_path.with_name(f".{settings.catalog_path.name}.{uuid.uuid4().hex}.tmp")
    os.link(final, link)
    os.replace(link, settings.catalog_path)


def refresh_catalog(settings: Settings) -> Path:
    """On an object-storage root, make the local ``analytics.duckdb`` the version the store's
    pointer names (downloaded once, its sha256 checked on arrival). A local root needs nothing."""
    if not settings.remote:
        return settings.catalog_path
    pointer = current_pointer(settings)
    if pointer is None:
        return settings.catalog_path
    # Hashed once, when it arrives (a year's catalog is ~100 MB: not on every connection or request).
    downloaded = not (settings.local_published_dir / f"{pointer['version']}.duckdb").exists()
    path = versions.local_version(settings, pointer["version"])
    if downloaded and sha256_file(path) != pointer["sha256"]:
        path.unlink(missing_ok=True)
        raise RuntimeError(
            f"{settings.published_dir / pointer['version']}.duckdb does not match the sha256 in "
            f"{settings.published_dir / CURRENT}: refusing to open it (removed the local copy)"
        )
    if not (settings.catalog_path.exists() and os.path.samefile(path, settings.catalog_path)):
        _link_current(settings, path)
    return settings.catalog_path


def _write_version(
    tmp: Path, settings: Settings, external: list[ExternalView] | tuple, version: str, result: PublishResult
) -> None:
    # The staging views call pseudonymize() and read raw/ relative to the root: the copy runs
    # on a connection with the UDF and the root as file_search_path, under the warehouse lock.
    con = connect(tmp, search_path=settings.local_root)
    try:
        register_udf(con, load_key(settings))
        if settings.remote:  # zones on s3:// (resources/core/object_store.py)
            register_object_store(con, force=True)
        names = _copy_warehouse(con, settings, result)
        for v in external:
            if v.parquet_glob is None:
                select = v.query(set(names)) if callable(v.query) else v.query
                if select is None:
                    continue
            elif not has_files(v.parquet_glob):
                continue
            else:
                select = v.query or f"select * from read_parquet({sql_str(v.parquet_glob)}, union_by_name = true)"
            con.execute(f'create schema if not exists "{v.schema}"')
            con.execute(f'create table "{v.schema}"."{v.name}" as {select}')
            if v.description:
                con.execute(f'comment on table "{v.schema}"."{v.name}" is {sql_str(v.description)}')
            names.append((v.schema, v.name))
        for schema, name in names:
            result.row_counts[f"{schema}.{name}"] = con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[
                0
            ]
        # A table of contents analysts can query: what is here and which version it is.
        con.execute("create schema if not exists catalog")
        con.execute("create table catalog.tables (schema_name varchar, table_name varchar, row_count bigint)")
        if result.row_counts:
            con.executemany(
                "insert into catalog.tables values (?, ?, ?)",
                [[*k.split(".", 1), n] for k, n in result.row_counts.items()],
            )
        _write_columns(con, column_descriptions(settings, external))
        result.history_entry = _history_entry(con, settings, version, result)
        versions.write_versions_table(con, [*versions.history(settings), result.history_entry])
        con.execute(
            "create table catalog.version as select ? as version, ? as environment, now() as published_at, "
            "? as code_version, ? as production_model, ?::bigint as warehouse_snapshot",
            [
                version,
                settings.env,
                result.history_entry["code_version"],
                result.history_entry["production_model"],
                result.warehouse_snapshot,
            ],
        )
        con.execute("checkpoint")  # everything in the file itself, no WAL beside it
    finally:
        con.close()


def _history_entry(con: duckdb.DuckDBPyConnection, settings: Settings, version: str, result: PublishResult) -> dict:
    counts = result.row_counts
    model = None
    if "ml.model_registry" in counts:
        row = con.execute(
            "select model_version from ml.model_registry where status = 'production' "
            "order by horizon = 'day_ahead' desc limit 1"
        ).fetchone()
        model = row[0] if row else None
    return {
        "version": version,
        "published_at": versions.published_at(version).isoformat(),
        "environment": settings.env,
        "code_version": versions.code_version(),
        "production_model": model,
        "changes": versions.changes(versions.previous_row_counts(settings), counts),
        "rows_total": sum(counts.values()),
        "warehouse_snapshot": result.warehouse_snapshot,
    }


def column_descriptions(settings: Settings, external=()) -> dict[tuple[str, str, str], str]:
    """(schema, table, column) -> description: dbt's yml for the warehouse tables, the feature
    definitions for ml.flight_features, "" where nobody wrote one (catalog.columns shows which)."""
    out: dict[tuple[str, str, str], str] = {}
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if manifest.exists():
        for node in json.loads(manifest.read_text())["nodes"].values():
            if node["resource_type"] in ("model", "snapshot", "seed"):
                table = node.get("alias") or node["name"]
                for column, spec in (node.get("columns") or {}).items():
                    if spec.get("description"):
                        schema = PUBLISHED_SCHEMAS.get(node["schema"], node["schema"])  # snapshots publish as curated
                        out[(schema, table, column)] = " ".join(spec["description"].split())
    for v in external:  # the feature definitions table describes ml.flight_features' columns
        if (v.schema, v.name) == ("ml", "feature_definitions") and v.parquet_glob and has_files(v.parquet_glob):
            with connect() as mem:
                if "://" in v.parquet_glob:
                    register_object_store(mem, force=True)
                for name, text in mem.execute(
                    f"select name, description from read_parquet({sql_str(v.parquet_glob)})"
                ).fetchall():
                    out[("ml", "flight_features", name)] = text
    return out


def _write_columns(con: duckdb.DuckDBPyConnection, described: dict[tuple[str, str, str], str]) -> None:
    """catalog.columns: every column analysts can query, its type and what it means."""
    con.execute(
        "create table catalog.columns (schema_name varchar, table_name varchar, column_name varchar, "
        "data_type varchar, description varchar)"
    )
    rows = con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = current_database() and table_schema <> 'catalog' "
        "order by table_schema, table_name, ordinal_position"
    ).fetchall()
    con.executemany(
        "insert into catalog.columns values (?, ?, ?, ?, ?)",
        [[s, t, c, d, described.get((s, t, c), "")] for s, t, c, d in rows],
    )


def _collect_old_versions(settings: Settings) -> None:
    """Keep complete versions by retention (versions.expired); drop what an interrupted publish left
    (temporaries). Caller holds the publish lock."""
    local = settings.local_published_dir
    for leftover in local.glob(".*.tmp*"):
        leftover.unlink(missing_ok=True)
    for leftover in settings.local_root.glob(f".{settings.catalog_path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)  # a link made just before a kill
    kept = []
    for path in sorted(local.glob("v*.duckdb")):
        if _is_complete(path):
            kept.append(path)
        else:  # derived and unreadable (a truncated or hand-placed copy): rebuilt by any publish
            path.unlink(missing_ok=True)
    names = sorted({p.stem for p in kept} | (set(versions.kept_versions(settings)) if settings.remote else set()))
    for old in versions.expired(names, datetime.now(timezone.utc)):
        (local / f"{old}.duckdb").unlink(missing_ok=True)
        if settings.remote:  # an upload is whole (one PUT), so only retention removes one
            (settings.published_dir / f"{old}.duckdb").unlink(missing_ok=True)


def _is_complete(path: Path) -> bool:
    """A version counts only if it opens and names itself (catalog.version, written last)."""
    try:
        with connect(path, read_only=True) as con:
            return con.execute("select version from catalog.version").fetchone()[0] == path.stem
    except (duckdb.IOException, duckdb.CatalogException, TypeError):  # unreadable, or no catalog.version
        return False
    except duckdb.Error:  # e.g. open in this process under another configuration: in use, so kept
        return True


def connect_catalog(settings: Settings) -> duckdb.DuckDBPyConnection:
    """How analysts (and tests) read: read-only, and with no access to any other file (the catalog
    holds every table itself), so the raw zone or a key cannot be read through it."""
    return connect(refresh_catalog(settings), read_only=True, config={"enable_external_access": False})


def connect_sandbox(settings: Settings, user: str | None = None) -> duckdb.DuckDBPyConnection:
    """A writable DuckDB file of the analyst's own (``sandbox/<user>.duckdb``) with the catalog
    attached read-only as ``analytics``: create any table here without touching the pipeline's
    data. File access is confined to the analyst's own folder ``sandbox/<user>/`` (exports, e.g.
    ``COPY t TO 'sandbox/<user>/t.parquet'``); the raw zone, the warehouse, keys and other
    analysts' sandboxes are out of reach. The catalog is attached before access is closed, and
    a confined connection cannot reopen it."""
    user = user or os.environ.get("USER") or "analyst"
    if not USER_NAME.fullmatch(user):
        raise ValueError(
            f"sandbox user {user!r}: use letters, digits, '.', '_' or '-' (it names a file in {settings.sandbox_dir})"
        )
    own = settings.sandbox_dir / user
    own.mkdir(parents=True, exist_ok=True)
    con = connect(settings.sandbox_dir / f"{user}.duckdb")
    # DuckDB keeps the path of every attached database readable after external access is closed,
    # so `DETACH analytics; ATTACH '<catalog>' AS a2` reopened the shared catalog writable. The
    # catalog is attached through a one-off link that is removed at once: the catalog's own path
    # is never allowed, and the link's path no longer leads to it.
    link = own / f".catalog-{uuid.uuid4().hex}.duckdb"
    os.symlink(refresh_catalog(settings), link)
    try:
        con.execute(f"attach {sql_str(str(link))} as analytics (read_only)")
        link.unlink()
        con.execute("set allowed_directories = [?]", [str(own) + "/"])
        con.execute("set enable_external_access = false")
    except BaseException:
        con.close()
        raise
    finally:
        link.unlink(missing_ok=True)
    return con
