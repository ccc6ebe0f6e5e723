"""dbt-duckdb plugin: gives dbt's connections the ``pseudonymize`` UDF, keyed from the
environment, so the key never appears in SQL, compiled artifacts or git; when the raw zone is
read from object storage (LAKEHOUSE_RAW_URL=s3://bucket/prefix/raw), access to the store (httpfs);
the packaged extensions; and everything that names a folder.

Why the folders are here and not in profiles.yml: dbt hashes the rendered profile, and a profile
that changed (another root: every test's temporary lakehouse, a scale benchmark, a restored copy)
makes each `dbt build` parse the whole project again instead of reusing the manifest (5-7 s an
invocation). The profile attaches ``ducklake:lakehouse_warehouse``, a DuckLake secret made here
from the environment (resources/core/settings.py, Settings.dbt_env)."""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin

from resources.core.config import LakehouseEnvironment
from resources.core.duckdb_connect import extension_directory, sql_str
from resources.core.object_store import register_object_store
from resources.core.pseudonym import load_key, register_udf
from resources.core.settings import Settings

WAREHOUSE_SECRET = "lakehouse_warehouse"  # dbt_project/profiles.yml attaches it
EXTENSIONS = ("ducklake", "sqlite", "postgres", "httpfs")


def _root() -> str:
    return os.environ.get("LAKEHOUSE_ROOT", "../lakehouse")


class Plugin(BasePlugin):
    def configure_connection(self, conn):
        # DuckDB's own signed extensions from the packaged folder (resources/core/duckdb_connect.py);
        # the profile has turned downloads and unsigned extensions off.
        conn.execute(f"set extension_directory = {sql_str(str(extension_directory()))}")
        for name in EXTENSIONS:
            conn.execute(f"load {name}")
        # Loaded here, not in initialize(): `dbt parse` creates the plugin without connecting,
        # and must not generate a key file as a side effect.
        register_udf(conn, load_key(Settings.from_env()))
        # Before the profile attaches the warehouse: its data path may be on the store too.
        register_object_store(conn, force=os.environ.get("LAKEHOUSE_WAREHOUSE_DATA", "").startswith("s3://"))
        # Once, before any query: DuckDB refuses to move its spill folder after a spill. DuckDB
        # takes 80% of the machine by default; the bound makes a large build spill instead.
        conn.execute(f"set global memory_limit = {sql_str(LakehouseEnvironment.from_environ().duckdb_memory)}")
        conn.execute(f"set global temp_directory = {sql_str(_root() + '/.duckdb_tmp')}")
        catalog = os.environ.get("LAKEHOUSE_WAREHOUSE_CATALOG", "sqlite:../lakehouse/warehouse.sqlite")
        data = os.environ.get("LAKEHOUSE_WAREHOUSE_DATA", "../lakehouse/warehouse/")
        conn.execute(
            f"create or replace temporary secret {WAREHOUSE_SECRET} "
            f"(type ducklake, metadata_path {sql_str(catalog)}, data_path {sql_str(data)})"
        )

    def configure_cursor(self, cursor):
        # Per cursor, as dbt-duckdb applies its settings: sources read `raw/...` relative to the
        # root, so the staging views stored in the warehouse hold no absolute path and a copied or
        # moved lakehouse reads its own files.
        cursor.execute(f"set file_search_path = {sql_str(_root())}")
