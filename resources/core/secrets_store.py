"""Keys that must never sit in the lakehouse's readable zones or in git.

A key comes from its environment variable; in ``prod`` that variable is required. In ``dev`` a
random key is generated on first use into the secrets folder, which lives *beside* the lakehouse
root, not inside it: ``LAKEHOUSE_SECRETS_DIR``, else ``<root>.secrets/`` (folder 0700, files
0600). Copying or publishing the lakehouse therefore never copies a key; moving a lakehouse means
moving (or pointing ``LAKEHOUSE_SECRETS_DIR`` at) its secrets too.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # settings.py asks this module where the keys live
    from resources.core.settings import Settings

SECRETS_DIR_ENV = "LAKEHOUSE_SECRETS_DIR"


class MissingKeyError(RuntimeError):
    pass


def secrets_dir(settings: Settings, environ: dict[str, str] | None = None) -> Path:
    environ = dict(os.environ if environ is None else environ)
    if value := environ.get(SECRETS_DIR_ENV, "").strip():
        return Path(value).expanduser().resolve()
    local = settings.local_root  # an object-storage root's keys sit beside its local state folder
    return local.parent / f"{local.name}.secrets"


def create_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def load_or_create_key(
    settings: Settings, env_var: str, name: str, environ: dict[str, str] | None = None, sealed: Path | None = None
) -> bytes:
    """The key from the environment or the secrets folder; a dev key is generated on first use.
    ``sealed``: a file already written with this key (the registry's audit chain). When it exists,
    a missing key is an error naming the file to restore, never a new key: a new one would only
    turn every sealed line into "not written by the registry"."""
    environ = dict(os.environ if environ is None else environ)
    if value := environ.get(env_var, "").strip():
        return value.encode()
    if settings.env == "prod":
        raise MissingKeyError(f"{env_var} must be set in prod; a generated key is for dev only")
    folder = secrets_dir(settings, environ)
    create_private_dir(folder)
    path = folder / name
    if not path.exists() and sealed is not None and sealed.exists():
        raise MissingKeyError(
            f"{path} is missing, and {sealed} was sealed with it: restore {name} from your "
            f"secret store (or set {env_var}); a new key cannot verify what the old one sealed"
        )
    if not path.exists():
        tmp = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
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


REQUIRED_IN_PROD = ("LAKEHOUSE_PSEUDONYM_KEY", "LAKEHOUSE_REGISTRY_KEY")


def require_prod_keys(settings: Settings, environ: dict[str, str] | None = None) -> None:
    """Prod refuses to start, before anything is written, when a key is missing."""
    environ = dict(os.environ if environ is None else environ)
    if settings.env != "prod":
        return
    missing = [v for v in REQUIRED_IN_PROD if not environ.get(v, "").strip()]
    if missing:
        raise MissingKeyError(f"LAKEHOUSE_ENV=prod needs {', '.join(missing)} in the environment; nothing was written")
