"""Nothing delivered is ever lost: a re-delivery keeps the batch it replaces.

Before a raw (or quarantine) partition is rewritten with *different* rows, the file it replaces
is kept under ``raw_archive/<zone>/<source>/delivery_date=YYYY-MM-DD/<sha256[:16]>.parquet`` (a
hard link: no copy, the old inode simply stays), and one line goes to
``raw_archive/_archive.jsonl``: zone, source, day, the replaced batch, its sha256, when it was
replaced and by which batch. Re-running an unchanged delivery is not a re-delivery: the rows are
compared without the per-run lineage columns (_batch_id, _ingested_at) and nothing is archived.
The catalog publishes the log as ``catalog.replaced_batches``; the current batch of every row is
its ``batch_id`` lineage column.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import polars as pl

from resources.catalog.views import ExternalView
from resources.core.duckdb_connect import sql_str
from resources.core.parquet_io import append_lines, copy_file, read_parquet, sha256_file
from resources.core.settings import Settings

PER_RUN_COLUMNS = ["_batch_id", "_ingested_at"]
LOG = "_archive.jsonl"


def archive_dir(settings: Settings) -> Path:
    return settings.root / "raw_archive"


def same_rows(old: pl.DataFrame, new: pl.DataFrame | None) -> bool:
    if new is None:
        return False
    drop = [c for c in PER_RUN_COLUMNS if c in old.columns]
    a, b = old.drop(drop), new.drop([c for c in PER_RUN_COLUMNS if c in new.columns])
    return a.columns == b.columns and a.height == b.height and a.equals(b)


def keep_replaced(
    settings: Settings,
    zone: str,
    source: str,
    day: date | None,
    path: Path,
    new: pl.DataFrame | None,
    new_batch: str,
    now: datetime,
) -> dict | None:
    """Archive ``path`` if it exists and ``new`` (None: the file is being removed) differs."""
    if not path.exists():
        return None
    old = read_parquet(path)
    if same_rows(old, new):
        return None
    sha = sha256_file(path)
    folder = archive_dir(settings) / zone / source / (f"delivery_date={day}" if day else "reference")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{sha[:16]}.parquet"
    if not target.exists():
        copy_file(path, target)
    entry = {
        "zone": zone,
        "source": source,
        "delivery_date": str(day) if day else None,
        "batch_id": old["_batch_id"][0] if "_batch_id" in old.columns and old.height else None,
        "rows": old.height,
        "sha256": sha,
        "archived_path": str(target.relative_to(settings.root)),
        "replaced_at": now.isoformat(),
        "replaced_by_batch": new_batch if new is not None else None,
    }
    append_lines(archive_dir(settings) / LOG, [json.dumps(entry, sort_keys=True)])
    return entry


def catalog_views(settings: Settings):
    """``catalog.replaced_batches``: the archive log, one row per replaced batch."""
    log = archive_dir(settings) / LOG
    query = (
        f"select zone, source, delivery_date::date as delivery_date, batch_id, rows, sha256, archived_path, "
        f"replaced_at::timestamptz as replaced_at, replaced_by_batch "
        f"from read_json_auto({sql_str(str(log))}, format = 'newline_delimited')"
    )
    return [
        ExternalView(
            "catalog",
            "replaced_batches",
            str(log),
            "Every raw or quarantine batch a re-delivery replaced, kept in raw_archive/ with its "
            "sha256; the current batch of a row is its batch_id.",
            query,
        )
    ]
