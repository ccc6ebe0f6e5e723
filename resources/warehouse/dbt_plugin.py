"""dbt-duckdb plugin: gives dbt's connections the ``pseudonymize`` UDF, keyed from the
environment, so the key never appears in SQL, compiled artifacts or git."""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin

from resources.core.pseudonym import load_key, register_udf
from resources.core.settings import Settings


class Plugin(BasePlugin):
    def configure_connection(self, conn):
        # Loaded here, not in initialize(): `dbt parse` creates the plugin without connecting,
        # and must not generate a key file as a side effect.
        register_udf(conn, load_key(Settings.from_env()))
