"""dbt-duckdb plugin: gives dbt's connections the ``pseudonymize`` UDF, keyed from the
environment, so the key never appears in SQL, compiled artifacts or git."""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin

from resources.pseudonym import load_key, register_udf
from resources.settings import Settings


class Plugin(BasePlugin):
    def initialize(self, plugin_config):
        self._key = load_key(Settings.from_env())

    def configure_connection(self, conn):
        register_udf(conn, self._key)
