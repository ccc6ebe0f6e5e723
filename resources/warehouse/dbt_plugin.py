"""dbt-duckdb plugin: gives dbt's connections the ``pseudonymize`` UDF, keyed from the
environment, so the key never appears in SQL, compiled artifacts or git; and, when the raw zone is
read from object storage (LAKEHOUSE_RAW_URL=s3://bucket/prefix/raw), access to the store (httpfs)."""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin

from resources.core.object_store import register_object_store
from resources.core.pseudonym import load_key, register_udf
from resources.core.settings import Settings


class Plugin(BasePlugin):
    def configure_connection(self, conn):
        # Loaded here, not in initialize(): `dbt parse` creates the plugin without connecting,
        # and must not generate a key file as a side effect.
        register_udf(conn, load_key(Settings.from_env()))
        # Before the profile attaches the warehouse: its data path may be on the store too.
        register_object_store(conn, force=os.environ.get("LAKEHOUSE_WAREHOUSE_DATA", "").startswith("s3://"))
