"""The analyst catalog: ``analytics.duckdb``, a read-only DuckLake catalog pinned at a published
snapshot of the warehouse.

The warehouse is a DuckLake (resources/warehouse/lock.py); a publish names one of its snapshots
instead of copying its tables. Each publish:

1. writes, in one warehouse transaction under the warehouse lock, what the catalog adds to the
   warehouse's own tables: the ``catalog`` schema (tables, columns, version, versions) and the
   tables declared outside the warehouse (the registry's exports, other teams' products: small);
   that commit is the published snapshot;
2. copies the published part of the warehouse's metadata at that snapshot into
   ``published/<version>.duckdb``, a DuckLake catalog in DuckDB's own format (a few MB: file
   lists, schemas, statistics; no data) holding that one snapshot and nothing analysts may not
   see (staging and intermediate views, which read the raw zone, seeds, bookkeeping tables).
   The copy's data files are the warehouse's; none is written or copied. It is written under a
   temporary name and renamed into place only when complete;
3. links it as ``analytics.duckdb`` (atomic rename: a new connection sees the old version or the
   new one, never a mix);
4. keeps complete versions by retention (resources/catalog/versions.py: the newest 5 by default,
   addressable for time travel); the warehouse's maintenance keeps every snapshot a kept version
   reads (resources/warehouse/maintenance.py).

Analysts attach a version read-only (``connect_catalog``, ``connect_sandbox``): its data files
through a filesystem that refuses writes (resources/catalog/read_only_files.py), never the
warehouse's SQLite catalog, whose extension ignores DuckDB's file confinement.
"""

from __future__ import annotations

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
from resources.catalog.attach import attach_version, close_access, connect_version
from resources.catalog.views import ExternalView
from resources.core.duckdb_connect import WAREHOUSE_ALIAS, attach_ducklake, connect, sql_str
from resources.core.file_lock import exclusive
from resources.core.object_store import register_object_store
from resources.core.parquet_io import sha256_file, upload_file_atomic, write_text_atomic
from resources.core.settings import DBT_PROJECT_DIR, Settings
from resources.ml.lake import LAKE_TABLE_DESCRIPTIONS, ML_SCHEMA
from resources.monitoring.paths import MONITORING_TABLE_DESCRIPTIONS
from resources.warehouse.lock import open_warehouse, warehouse_lock

# What analysts see: every warehouse table outside these schemas and not named "_..." (bookkeeping
# such as ml._partitions). Staging and intermediate are views over the raw zone; seeds are inputs.
PRIVATE_SCHEMAS = {"staging", "intermediate", "reference", "main"}
CATALOG_SCHEMA = "catalog"
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
    warehouse_snapshot: int | None = None  # the warehouse DuckLake's snapshot this version names


def has_files(con: duckdb.DuckDBPyConnection, pattern: str) -> bool:
    """Through the connection that will read the files: on an object-storage root one listing by
    DuckDB's httpfs (~2 ms on moto) where s3fs's glob took ~0.1-0.3 s."""
    if any(c in pattern for c in "*?["):
        return con.execute("select 1 from glob(?) limit 1", [pattern]).fetchone() is not None
    # httpfs's glob returns a path without a wildcard as it is, present or not: list its folder.
    folder = pattern.rsplit("/", 1)[0]
    return con.execute("select 1 from glob(?) where file = ?", [f"{folder}/*", pattern]).fetchone() is not None


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
    # Hashed once, when it arrives, not on every connection or request.
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
    # Under the warehouse lock: the catalog's own tables are a warehouse write, and no writer or
    # maintenance commits between that commit and the copy of the metadata that names it.
    with warehouse_lock(settings), open_warehouse(settings, read_only=False) as con:
        previous = _published_counts(con, settings)
        con.execute("begin transaction")
        try:
            _write_catalog_tables(con, settings, external, version, previous, result)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        (result.warehouse_snapshot,) = con.execute(f"select * from {WAREHOUSE_ALIAS}.current_snapshot()").fetchone()
        if result.warehouse_snapshot != result.history_entry["warehouse_snapshot"]:  # the lock makes it ours
            raise RuntimeError(
                f"the publish commit became snapshot {result.warehouse_snapshot}, not "
                f"{result.history_entry['warehouse_snapshot']}: another writer committed without the warehouse lock"
            )
        _copy_metadata(con, tmp, settings.warehouse_data, result.warehouse_snapshot)


def _published_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = ? and table_type = 'BASE TABLE' and not starts_with(table_name, '_') "
        "and table_schema not in (select unnest(?)) order by 1, 2",
        [WAREHOUSE_ALIAS, sorted(PRIVATE_SCHEMAS)],
    ).fetchall()
    return [(s, t) for s, t in rows]


def _published_counts(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Row counts of the last published version (its catalog.tables, at its snapshot), empty
    before the first or when that snapshot is no longer kept."""
    last = [e["warehouse_snapshot"] for e in versions.history(settings) if e.get("warehouse_snapshot")]
    if not last:
        return {}
    try:
        rows = con.execute(
            f"select schema_name, table_name, row_count from {CATALOG_SCHEMA}.tables at (version => ?)", [last[-1]]
        ).fetchall()
    except duckdb.Error:
        return {}
    return {f"{s}.{t}": n for s, t, n in rows}


def _write_catalog_tables(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    external: list[ExternalView] | tuple,
    version: str,
    previous: dict[str, int],
    result: PublishResult,
) -> None:
    declared = {(v.schema, v.name) for v in external}
    # Listed once and kept up to date here: information_schema over a DuckLake costs ~0.05 s a query.
    names = set(_published_tables(con))
    for schema, table in sorted(names):
        # What an earlier publish declared and nothing declares now (a product a team removed).
        if schema not in PLATFORM_SCHEMAS and (schema, table) not in declared:
            con.execute(f'drop table "{schema}"."{table}"')
            names.discard((schema, table))
    con.execute(f"create schema if not exists {CATALOG_SCHEMA}")
    for v in external:
        if v.parquet_glob is None:
            select = v.query(names) if callable(v.query) else v.query
            if select is None:
                continue
        elif not has_files(con, v.parquet_glob):
            con.execute(f'drop table if exists "{v.schema}"."{v.name}"')  # gone since the last publish
            names.discard((v.schema, v.name))
            continue
        else:
            select = v.query or f"select * from read_parquet({sql_str(v.parquet_glob)}, union_by_name = true)"
        con.execute(f'create schema if not exists "{v.schema}"')
        con.execute(f'create or replace table "{v.schema}"."{v.name}" as {select}')
        names.add((v.schema, v.name))
        if v.description:
            con.execute(f'comment on table "{v.schema}"."{v.name}" is {sql_str(v.description)}')
    own = {"tables", "columns", "version", "versions"}
    published = sorted((s, t) for s, t in names if not (s == CATALOG_SCHEMA and t in own))
    for (schema, table), text in TABLE_DESCRIPTIONS.items():
        if (schema, table) in published:
            con.execute(f'comment on table "{schema}"."{table}" is {sql_str(text)}')
    if published:  # one query, not one per table (~0.1 s less)
        counts = " union all ".join(
            f'select {sql_str(f"{schema}.{table}")}, count(*) from "{schema}"."{table}"' for schema, table in published
        )
        result.row_counts.update(sorted(con.execute(counts).fetchall()))
    # A table of contents analysts can query: what is here and which version it is.
    con.execute(
        f"create or replace table {CATALOG_SCHEMA}.tables (schema_name varchar, table_name varchar, row_count bigint)"
    )
    if result.row_counts:
        con.executemany(
            f"insert into {CATALOG_SCHEMA}.tables values (?, ?, ?)",
            [[*k.split(".", 1), n] for k, n in result.row_counts.items()],
        )
    _write_columns(con, published, column_descriptions(con if ("ml", "feature_definitions") in names else None))
    (snapshot,) = con.execute(f"select * from {WAREHOUSE_ALIAS}.current_snapshot()").fetchone()
    result.history_entry = _history_entry(con, settings, version, previous, result.row_counts, snapshot + 1)
    versions.write_versions_table(con, [*versions.history(settings), result.history_entry], CATALOG_SCHEMA)
    con.execute(
        f"create or replace table {CATALOG_SCHEMA}.version as select ? as version, ? as environment, "
        "now() as published_at, ? as code_version, ? as production_model, ?::bigint as warehouse_snapshot",
        [
            version,
            settings.env,
            result.history_entry["code_version"],
            result.history_entry["production_model"],
            snapshot + 1,  # this transaction's commit
        ],
    )


# Which rows of the warehouse's DuckLake metadata a version keeps, per metadata table (DuckLake
# 0.3's tables; `$m` is the warehouse's metadata schema, `$n` the published snapshot, `x` the row).
# A version is that one snapshot of the published tables: no earlier snapshot (so nothing private
# is reachable by time travel), no view (staging and intermediate read the raw zone), no private
# schema, seed or bookkeeping table, no file of any of them.
_ALIVE = "x.begin_snapshot <= $n and coalesce(x.end_snapshot > $n, true)"
_OF_TABLES = f"{_ALIVE} and x.table_id in (select table_id from temp._published)"
_OF_FILES = (
    "x.data_file_id in (select data_file_id from $m.ducklake_data_file f where f.table_id in "
    "(select table_id from temp._published) and f.begin_snapshot <= $n and coalesce(f.end_snapshot > $n, true))"
)
_KEEP_ROWS = {
    "ducklake_metadata": "true",
    "ducklake_snapshot": "x.snapshot_id = $n",
    "ducklake_snapshot_changes": "x.snapshot_id = $n",
    "ducklake_schema_versions": "x.begin_snapshot <= $n",
    "ducklake_schema": f"{_ALIVE} and x.schema_id in (select schema_id from temp._schemas)",
    "ducklake_table": _OF_TABLES,
    "ducklake_view": "false",
    "ducklake_column": _OF_TABLES,
    "ducklake_column_tag": _OF_TABLES,
    "ducklake_tag": f"{_ALIVE} and (x.object_id in (select table_id from temp._published) "
    "or x.object_id in (select schema_id from temp._schemas))",
    "ducklake_data_file": _OF_TABLES,
    "ducklake_delete_file": _OF_TABLES,
    "ducklake_partition_info": _OF_TABLES,
    "ducklake_partition_column": "x.table_id in (select table_id from temp._published)",
    "ducklake_file_column_stats": _OF_FILES,
    "ducklake_file_partition_value": _OF_FILES,
    "ducklake_table_stats": "x.table_id in (select table_id from temp._published)",
    "ducklake_table_column_stats": "x.table_id in (select table_id from temp._published)",
    "ducklake_inlined_data_tables": "x.table_id in (select table_id from temp._published)",
    "ducklake_column_mapping": "x.table_id in (select table_id from temp._published)",
    "ducklake_name_mapping": "x.mapping_id in (select mapping_id from $m.ducklake_column_mapping "
    "where table_id in (select table_id from temp._published))",
    "ducklake_files_scheduled_for_deletion": "false",  # the warehouse's to delete, not a version's
}
_INLINED = re.compile(r"ducklake_inlined_data_(\d+)_\d+")


def _copy_metadata(con: duckdb.DuckDBPyConnection, target: Path, data: Path, snapshot: int) -> None:
    """The published part of the warehouse's DuckLake metadata at ``snapshot`` (``_KEEP_ROWS``) into
    ``target``: a DuckLake catalog in DuckDB's format (created by DuckLake itself, so its tables
    are the ones this DuckLake reads), its rows replaced. Filtering rows as they are copied costs
    one statement per table, where dropping and expiring in the copy took most of a publish. Works
    for a SQLite or a PostgreSQL warehouse catalog. A metadata table without a rule (a newer
    DuckLake) stops the publish rather than being copied whole."""
    source = f"__ducklake_metadata_{WAREHOUSE_ALIAS}"
    src = dict(
        con.execute(
            "select table_name, table_schema from information_schema.tables "
            "where table_catalog = ? and starts_with(table_name, 'ducklake_')",
            [source],
        ).fetchall()
    )
    unknown = sorted(t for t in src if t not in _KEEP_ROWS and not _INLINED.fullmatch(t))
    if unknown:
        raise RuntimeError(f"the warehouse's DuckLake metadata has tables this publish has no rule for: {unknown}")
    schema = src["ducklake_table"]
    m = f'{source}."{schema}"'
    con.execute(
        f"create or replace temp table _schemas as select schema_id from {m}.ducklake_schema x "
        f"where {_ALIVE.replace('$n', '?')} and x.schema_name not in (select unnest(?::varchar[]))",
        [snapshot, snapshot, sorted(PRIVATE_SCHEMAS - {"main"})],
    )
    con.execute(
        f"create or replace temp table _published as select x.table_id from {m}.ducklake_table x "
        f"join {m}.ducklake_schema s using (schema_id) where {_ALIVE.replace('$n', '?')} "
        "and s.schema_name not in (select unnest(?::varchar[])) and not starts_with(x.table_name, '_')",
        [snapshot, snapshot, sorted(PRIVATE_SCHEMAS)],
    )
    published = {r[0] for r in con.execute("select table_id from temp._published").fetchall()}
    con.execute(f"attach {sql_str('ducklake:' + str(target))} as _fresh (data_path {sql_str(str(data) + '/')})")
    con.execute("detach _fresh")
    con.execute(f"attach {sql_str(str(target))} as _copy")
    try:
        columns: dict[str, list[str]] = {}
        for table, column in con.execute(
            "select table_name, column_name from information_schema.columns where table_catalog = '_copy' "
            "order by table_name, ordinal_position"
        ).fetchall():
            columns.setdefault(table, []).append(column)
        con.execute("begin transaction")
        for table, listed_columns in columns.items():
            con.execute(f'delete from _copy."{table}"')
            if table not in src:
                continue
            listed = ", ".join(f'"{c}"' for c in listed_columns)
            where = _KEEP_ROWS[table].replace("$m", m)
            con.execute(
                f'insert into _copy."{table}" ({listed}) select {listed} from {m}."{table}" x '
                f"where {where.replace('$n', str(int(snapshot)))}"
            )
        for table in sorted(t for t in src if _INLINED.fullmatch(t)):  # inlined rows: one table per table version
            if int(_INLINED.fullmatch(table).group(1)) in published:
                con.execute(f'create table _copy."{table}" as select * from {m}."{table}"')
        con.execute("commit")
    finally:
        con.execute("detach _copy")
        con.execute("drop table if exists temp._schemas")
        con.execute("drop table if exists temp._published")


def _history_entry(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    version: str,
    previous: dict[str, int],
    counts: dict[str, int],
    snapshot: int,
) -> dict:
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
        "changes": versions.changes(previous, counts),
        "rows_total": sum(counts.values()),
        "warehouse_snapshot": snapshot,
    }


def column_descriptions(con: duckdb.DuckDBPyConnection | None = None) -> dict[tuple[str, str, str], str]:
    """(schema, table, column) -> description: dbt's yml for the warehouse tables, the feature
    definitions for ml.flight_features (read through ``con``, whose ``ml.feature_definitions`` this
    publish has just written), "" where nobody wrote one (catalog.columns shows which)."""
    out: dict[tuple[str, str, str], str] = {}
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if manifest.exists():
        for node in json.loads(manifest.read_text())["nodes"].values():
            if node["resource_type"] in ("model", "snapshot", "seed"):
                table = node.get("alias") or node["name"]
                for column, spec in (node.get("columns") or {}).items():
                    if spec.get("description"):
                        out[(node["schema"], table, column)] = " ".join(spec["description"].split())
    if con is not None:
        for name, text in con.execute("select name, description from ml.feature_definitions").fetchall():
            out[("ml", "flight_features", name)] = text
    return out


def _write_columns(
    con: duckdb.DuckDBPyConnection, tables: list[tuple[str, str]], described: dict[tuple[str, str, str], str]
) -> None:
    """catalog.columns: every column analysts can query, its type and what it means."""
    con.execute(
        f"create or replace table {CATALOG_SCHEMA}.columns (schema_name varchar, table_name varchar, "
        "column_name varchar, data_type varchar, description varchar)"
    )
    shown = [(s, t) for s, t in tables if s != CATALOG_SCHEMA]  # the catalog's own tables describe the rest
    listed = set(shown)
    described = {k: v for k, v in described.items() if k[:2] in listed}
    # One statement: the descriptions travel as parallel lists (row-by-row inserts cost ~0.15 s).
    con.execute(
        f"insert into {CATALOG_SCHEMA}.columns select c.table_schema, c.table_name, c.column_name, c.data_type, "
        "coalesce(d.description, '') from information_schema.columns c "
        "join (select unnest(?::varchar[]) s, unnest(?::varchar[]) t) p on (c.table_schema, c.table_name) = (p.s, p.t) "
        "left join (select unnest(?::varchar[]) s, unnest(?::varchar[]) t, unnest(?::varchar[]) c, "
        "unnest(?::varchar[]) description) d on (c.table_schema, c.table_name, c.column_name) = (d.s, d.t, d.c) "
        "where c.table_catalog = ? order by c.table_schema, c.table_name, c.ordinal_position",
        [
            [s for s, _ in shown],
            [t for _, t in shown],
            [k[0] for k in described],
            [k[1] for k in described],
            [k[2] for k in described],
            list(described.values()),
            WAREHOUSE_ALIAS,
        ],
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
    # A version's history line is written only once its file is complete and in place: a version
    # it names needs no second look beyond being a DuckDB file, anything else is attached first.
    recorded = {e["version"] for e in versions.history(settings)}
    for path in sorted(local.glob("v*.duckdb")):
        if (path.stem in recorded and _is_duckdb_file(path)) or _is_complete(path, settings):
            kept.append(path)
        else:  # derived and unreadable (a truncated or hand-placed copy): rebuilt by any publish
            path.unlink(missing_ok=True)
    names = sorted({p.stem for p in kept} | (set(versions.kept_versions(settings)) if settings.remote else set()))
    for old in versions.expired(names, datetime.now(timezone.utc)):
        (local / f"{old}.duckdb").unlink(missing_ok=True)
        if settings.remote:  # an upload is whole (one PUT), so only retention removes one
            (settings.published_dir / f"{old}.duckdb").unlink(missing_ok=True)


def _is_duckdb_file(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(12)[8:12] == b"DUCK"


def _is_complete(path: Path, settings: Settings) -> bool:
    """A version counts only if it attaches and names itself (catalog.version)."""
    try:
        with connect() as con:
            if settings.remote:  # catalog.version is a data file on the store
                register_object_store(con, force=True)
            attach_ducklake(con, str(path), settings.warehouse_data, "_check", read_only=True)
            return con.execute("select version from _check.catalog.version").fetchone()[0] == path.stem
    except (duckdb.IOException, duckdb.CatalogException, duckdb.InvalidInputException, TypeError):
        return False  # unreadable, not a catalog, or no catalog.version
    except duckdb.Error:  # e.g. open in this process under another configuration: in use, so kept
        return True


def connect_catalog(settings: Settings) -> duckdb.DuckDBPyConnection:
    """How analysts, the scoring service and tests read: the current version (connect_version)."""
    path = refresh_catalog(settings)
    if not path.exists():
        raise FileNotFoundError(f"no published catalog at {path}: run `make run` first")
    return connect_version(settings, path)


def connect_sandbox(settings: Settings, user: str | None = None) -> duckdb.DuckDBPyConnection:
    """A writable DuckDB file of the analyst's own (``sandbox/<user>.duckdb``) with the catalog
    attached read-only as ``analytics``: create any table here without touching the pipeline's
    data. File access is confined to the analyst's own folder ``sandbox/<user>/`` (exports, e.g.
    ``COPY t TO 'sandbox/<user>/t.parquet'``) and reads of the catalog's data files; the raw
    zone, the warehouse, keys and other analysts' sandboxes are out of reach."""
    user = user or os.environ.get("USER") or "analyst"
    if not USER_NAME.fullmatch(user):
        raise ValueError(
            f"sandbox user {user!r}: use letters, digits, '.', '_' or '-' (it names a file in {settings.sandbox_dir})"
        )
    own = settings.sandbox_dir / user
    own.mkdir(parents=True, exist_ok=True)
    con = connect(settings.sandbox_dir / f"{user}.duckdb")
    try:
        attach_version(con, settings, refresh_catalog(settings))
        close_access(con, own)
    except BaseException:
        con.close()
        raise
    return con
