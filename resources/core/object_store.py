"""Object storage: S3 or any S3-compatible store.

DuckDB reads ``s3://`` URLs with its own httpfs extension (the signed, packaged one:
resources/core/duckdb_connect.py) and a temporary S3 secret on the connection; Python's own file
operations (pathlib-style paths, uploads) go through fsspec's s3fs. Where the store is and who may
read it comes from the standard AWS environment (AWS_ENDPOINT_URL for a non-AWS store such as
MinIO or moto, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION or
AWS_DEFAULT_REGION), never from the repository, and the secret lives only in the connection.

``LAKEHOUSE_ROOT=s3://bucket/prefix`` puts every zone on the store (resources/core/settings.py;
paths are ``upath.UPath`` over s3fs). ``LAKEHOUSE_RAW_URL=s3://bucket/prefix/raw`` alone
points dbt's sources at a raw zone on the store (the layout is the local one:
``<source>/delivery_date=YYYY-MM-DD/part.parquet``) while the rest stays local (docs/scaling-out.md).
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from resources.core.duckdb_connect import sql_str

RAW_URL_ENV = "LAKEHOUSE_RAW_URL"
SCHEMES = ("s3://",)


def raw_url(environ: dict[str, str] | None = None) -> str | None:
    """The raw zone's object-storage URL, or None for the local raw zone. Anything but an s3:// URL
    is refused with the variable's name, so a typo cannot silently read the local zone."""
    environ = os.environ if environ is None else environ
    url = environ.get(RAW_URL_ENV) or ""  # not stripped: dbt's sources yml splices it verbatim
    if not url or url == "raw":
        return None
    return checked_url(url, RAW_URL_ENV)


def checked_url(url: str, name: str) -> str:
    # The URL is spliced into SQL string literals (the sources' read_parquet('...'), the catalog's
    # views): no quote, and no trailing slash, which would make 'raw//flights' a different key.
    if (
        not url.startswith(SCHEMES)
        or url.endswith("/")
        or any(c in "'\\" or c.isspace() for c in url)
        or len(url) <= len("s3://")
    ):
        raise ValueError(
            f"{name} must be an s3://bucket/prefix URL without quotes, backslashes, "
            f"spaces or a trailing slash, got {url!r}"
        )
    return url


def root_path(url: str):
    """``LAKEHOUSE_ROOT=s3://bucket/prefix`` as a path object with the pathlib API over s3fs."""
    from upath import UPath

    # No listings cache: another process (a run, a sensor) adds files; a cached listing would hide them.
    return UPath(checked_url(url, "LAKEHOUSE_ROOT"), skip_instance_cache=True, use_listings_cache=False)


def filesystem():
    import s3fs

    # skip_instance_cache: a new endpoint or credentials in the environment are read again.
    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


def s3_secret_options(environ: dict[str, str] | None = None) -> dict[str, str | bool]:
    """DuckDB S3 secret options from the standard AWS environment."""
    environ = os.environ if environ is None else environ
    options: dict[str, str | bool] = {
        "REGION": environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    }
    if environ.get("AWS_ACCESS_KEY_ID"):
        options |= {"KEY_ID": environ["AWS_ACCESS_KEY_ID"], "SECRET": environ.get("AWS_SECRET_ACCESS_KEY", "")}
    if environ.get("AWS_SESSION_TOKEN"):
        options["SESSION_TOKEN"] = environ["AWS_SESSION_TOKEN"]
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:  # MinIO, moto, another S3-compatible store: host[:port], path-style addressing
        parsed = urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"AWS_ENDPOINT_URL must be an http(s)://host[:port] URL, got {endpoint!r}")
        options |= {"ENDPOINT": parsed.netloc, "USE_SSL": parsed.scheme == "https", "URL_STYLE": "path"}
    return options


def register_object_store(conn, environ: dict[str, str] | None = None, force: bool = False) -> bool:
    """Give a DuckDB connection access to the store (httpfs and a temporary secret) when the raw
    zone (or, ``force``, the whole root) is on object storage."""
    if not force and raw_url(environ) is None:
        return False
    options = ", ".join(
        f"{k} {str(v).lower() if isinstance(v, bool) else sql_str(v)}" for k, v in s3_secret_options(environ).items()
    )
    conn.execute("load httpfs")
    conn.execute(f"create or replace temporary secret lakehouse_s3 (type s3, {options})")
    return True
