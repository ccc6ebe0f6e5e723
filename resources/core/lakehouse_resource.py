"""The Dagster resource that hands assets their lakehouse settings."""

from __future__ import annotations

import dataclasses

import dagster as dg

from resources.core.secrets_store import require_prod_keys
from resources.core.settings import Settings


class LakehouseResource(dg.ConfigurableResource):
    """Storage root and environment; unset fields come from LAKEHOUSE_ROOT / LAKEHOUSE_ENV."""

    root: str | None = None
    env: str | None = None

    def settings(self) -> Settings:
        base = Settings.from_env()
        settings = (
            Settings.at(self.root, self.env or base.env)
            if self.root
            else dataclasses.replace(base, env=self.env or base.env)
        )
        require_prod_keys(settings)  # before the root is even created: prod without keys writes nothing
        return settings.ensure()
