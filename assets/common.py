"""Conventions every asset shares: owners, partitions, backfill policy."""

from __future__ import annotations

import dagster as dg
import polars as pl

from resources.core.settings import Settings
from resources.raw.sources import SourceSpec, daily_window

DATA_ENGINEERING = "team:data-engineering"
SINGLE_RUN = dg.BackfillPolicy.single_run()  # a year of partitions is one run, not 365
WAREHOUSE_POOL = "warehouse"  # steps that write the warehouse (one DuckLake writer at a time): limit 1


def daily_partitions(sources: dict[str, SourceSpec]) -> dg.DailyPartitionsDefinition:
    start, end = daily_window(sources)
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_date=end.isoformat())


def table_schema(schema: dict[str, str] | pl.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in dict(schema).items()])


def monthly_partitions(sources: dict[str, SourceSpec]) -> dg.MonthlyPartitionsDefinition:
    """Monitoring periods: one Evidently HTML per month keeps a year of reports near 100 MB."""
    start, end = daily_window(sources)
    return dg.MonthlyPartitionsDefinition(start_date=start.isoformat(), end_date=end.isoformat())


def frame_table(df: pl.DataFrame, limit: int = 50) -> dg.MetadataValue:
    """A polars frame as a Dagster table (the UI renders it sortable, with column types)."""
    head = df.head(limit)
    records = [
        dg.TableRecord(
            {
                k: (
                    round(v, 4)
                    if isinstance(v, float)
                    else v
                    if isinstance(v, (int, str, bool)) or v is None
                    else str(v)
                )
                for k, v in row.items()
            }
        )
        for row in head.iter_rows(named=True)
    ]
    return dg.MetadataValue.table(records=records, schema=table_schema(head.schema))


def run_row_count(rows: int, partitions: int) -> dict:
    """A run's row count: Dagster's ``dagster/row_count`` when the run is one partition; over
    several, ``rows_in_run``, because Dagster copies a run's metadata onto every partition of its
    range and a day would show the whole range's total as its own row count."""
    return {"dagster/row_count": rows} if partitions <= 1 else {"rows_in_run": rows}


def per_partition(key: dg.AssetKey, metadata_by_partition: dict[str, dict]):
    """Each partition's own figures after a single-run backfill.

    A run's MaterializeResult is copied to every partition of its range (the 7-day total on each
    day). Yielded after the asset's output, one AssetMaterialization per partition becomes each
    partition's latest record with that day's own figures. Yielding them *instead* of the output
    (output_required=False) would skip downstream assets of the same run, so the output stays.
    """
    for partition, metadata in metadata_by_partition.items():
        yield dg.AssetMaterialization(asset_key=key, partition=partition, metadata=metadata)


def location(settings: Settings, path, name: str = "path") -> dict[str, dg.MetadataValue]:
    """A file or folder in metadata: its path (copyable), and for reports a link the UI opens
    (served by `make dev` on 127.0.0.1:3001; Dagster renders ``MetadataValue.url`` as a link)."""
    out = {name: dg.MetadataValue.path(str(path))}
    url = settings.report_url(path)
    if url:
        out[f"{name}_link"] = dg.MetadataValue.url(url)
    return out
