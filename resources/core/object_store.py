"""Object storage for the raw zone's readers: S3 or any S3-compatible store, through fsspec's s3fs.

The DuckDB build here bundles no httpfs extension, so DuckDB reads ``s3://`` URLs through an fsspec
filesystem registered on the connection. Where the store is and who may read it comes from the
standard AWS environment (AWS_ENDPOINT_URL for a non-AWS store such as MinIO or moto,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION), never from the repository.

``LAKEHOUSE_ROOT=s3://bucket/prefix`` puts every zone on the store (resources/core/settings.py;
paths are ``upath.UPath`` over the same s3fs). ``LAKEHOUSE_RAW_URL=s3://bucket/prefix/raw`` alone
points dbt's sources at a raw zone on the store (the layout is the local one:
``<source>/delivery_date=YYYY-MM-DD/part.parquet``) while the rest stays local (README, "Scaling out").
"""

from __future__ import annotations

import os

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
    if not url.startswith(SCHEMES) or url.endswith("/") or any(c in "'\\" or c.isspace() for c in url) \
            or len(url) <= len("s3://"):
        raise ValueError(f"{name} must be an s3://bucket/prefix URL without quotes, backslashes, "
                         f"spaces or a trailing slash, got {url!r}")
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


def register_object_store(conn, environ: dict[str, str] | None = None, force: bool = False) -> bool:
    """Register the S3 filesystem on a DuckDB connection when the raw zone (or, ``force``, the
    whole root) is on object storage."""
    if not force and raw_url(environ) is None:
        return False
    conn.register_filesystem(filesystem())
    return True
