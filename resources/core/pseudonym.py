"""Keyed pseudonymization (HMAC-SHA256) of identifiers that stand for people.

The same key gives the same pseudonym everywhere, so joins keep working; without the key the
clear value cannot be recovered or confirmed by hashing guesses. The key comes from
``LAKEHOUSE_PSEUDONYM_KEY``; in ``dev`` only, a random key is generated on first use into the
secrets folder beside (not inside) the lakehouse root (resources/core/secrets_store.py).
"""

from __future__ import annotations

import hashlib
import hmac

from resources.core.secrets_store import MissingKeyError as MissingKeyError  # noqa: F401 (re-exported)
from resources.core.secrets_store import load_or_create_key
from resources.core.settings import Settings

KEY_ENV = "LAKEHOUSE_PSEUDONYM_KEY"
UDF_NAME = "pseudonymize"


def load_key(settings: Settings, environ: dict[str, str] | None = None) -> bytes:
    return load_or_create_key(settings, KEY_ENV, "pseudonym.key", environ)


def pseudonymize(value: str | None, key: bytes) -> str | None:
    if value is None:
        return None
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def register_udf(conn, key: bytes) -> None:
    """Make ``pseudonymize(varchar)`` available on a DuckDB connection (nulls stay null)."""
    import duckdb

    conn.create_function(
        UDF_NAME,
        lambda v: pseudonymize(v, key),
        [duckdb.sqltype("VARCHAR")],
        duckdb.sqltype("VARCHAR"),
        side_effects=False,
    )
