"""Keyed pseudonymization (HMAC-SHA256) of identifiers that stand for people.

The same key gives the same pseudonym everywhere, so joins keep working; without the key the
clear value cannot be recovered or confirmed by hashing guesses. The key comes from
``LAKEHOUSE_PSEUDONYM_KEY``; in ``dev`` only, a random key is generated on first use into the
lakehouse's ``.secrets/`` (git-ignored with the rest of the lakehouse, mode 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from resources.settings import Settings

KEY_ENV = "LAKEHOUSE_PSEUDONYM_KEY"
UDF_NAME = "pseudonymize"


class MissingKeyError(RuntimeError):
    pass


def dev_key_path(settings: Settings) -> Path:
    return settings.secrets_dir / "pseudonym.key"


def load_key(settings: Settings, environ: dict[str, str] | None = None) -> bytes:
    environ = dict(os.environ if environ is None else environ)
    if value := environ.get(KEY_ENV, "").strip():
        return value.encode()
    if settings.env == "prod":
        raise MissingKeyError(f"{KEY_ENV} must be set in prod; a generated key is for dev only")
    path = dev_key_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # first writer wins; a racing process reads the winner's key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()


def pseudonymize(value: str | None, key: bytes) -> str | None:
    if value is None:
        return None
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def register_udf(conn, key: bytes) -> None:
    """Make ``pseudonymize(varchar)`` available on a DuckDB connection (nulls stay null)."""
    import duckdb

    conn.create_function(
        UDF_NAME, lambda v: pseudonymize(v, key), [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
        side_effects=False,
    )
