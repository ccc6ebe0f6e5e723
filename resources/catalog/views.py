"""What a data product declares to the analyst catalog besides its warehouse tables.

A small module of its own so that the zones that declare views (ml, monitoring, raw) and the
publish that writes them into the warehouse depend on it, not on each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ExternalView:
    """A catalog table over parquet the pipeline writes outside the warehouse (e.g. the registry),
    or, without ``parquet_glob``, derived from the warehouse's published tables: then ``query`` is
    given their (schema, table) pairs and returns its SELECT, or None to leave the table out."""

    schema: str
    name: str
    parquet_glob: str | None
    description: str = ""
    query: str | Callable[[set[tuple[str, str]]], str | None] | None = None  # instead of read_parquet(parquet_glob)
