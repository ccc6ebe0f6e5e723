"""The raw zone: deliveries as delivered (typed by contract) plus lineage columns.

Layout under the lakehouse root::

    raw/<source>/delivery_date=YYYY-MM-DD/part.parquet     daily sources, one file per partition
    raw/<source>/part.parquet                              reference sources
    quarantine/<source>/delivery_date=YYYY-MM-DD/part.parquet   rejected rows with `_reason`
    quarantine/<source>/undated/part.parquet               rows whose date cannot be read

Re-ingesting a partition rewrites exactly its files (atomically), so it never duplicates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from resources.ingest import (
    DATE_COLUMN,
    REASON_COLUMN,
    ContractResult,
    apply_contract,
    read_delivery,
    with_lineage,
)
from resources.parquet_io import remove_if_exists, write_parquet_atomic
from resources.settings import Settings
from resources.sources import SourceSpec

PARTITION_KEY = "delivery_date"


def raw_path(settings: Settings, source: str, day: date | None = None) -> Path:
    base = settings.raw_dir / source
    return base / f"{PARTITION_KEY}={day.isoformat()}" / "part.parquet" if day else base / "part.parquet"


def quarantine_path(settings: Settings, source: str, day: date | None = None) -> Path:
    base = settings.quarantine_dir / source
    return base / f"{PARTITION_KEY}={day.isoformat()}" / "part.parquet" if day else base / "part.parquet"


def undated_quarantine_path(settings: Settings, source: str, delivery: Path) -> Path:
    return settings.quarantine_dir / source / "undated" / f"{delivery.name}.parquet"


@dataclass
class PartitionIngest:
    day: date | None
    delivered: int
    raw_rows: int
    quarantined: int
    reasons: Counter = field(default_factory=Counter)


@dataclass
class IngestSummary:
    source: str
    partitions: list[PartitionIngest]
    undated_quarantined: int = 0
    unexpected_columns: list[str] = field(default_factory=list)
    schema: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return sum(p.delivered for p in self.partitions) + self.undated_quarantined

    @property
    def raw_rows(self) -> int:
        return sum(p.raw_rows for p in self.partitions)

    @property
    def quarantined(self) -> int:
        return sum(p.quarantined for p in self.partitions) + self.undated_quarantined

    @property
    def reasons(self) -> Counter:
        total: Counter = Counter()
        for p in self.partitions:
            total.update(p.reasons)
        return total


def _reason_counts(rejected: pl.DataFrame) -> Counter:
    # Count per column-level reason ("column 'x': ..." parts), not per full message.
    counts: Counter = Counter()
    for msg in rejected[REASON_COLUMN].to_list():
        for part in msg.split("; "):
            counts[part.split(":")[0]] += 1
    return counts


def _write_partition(
    settings: Settings, spec: SourceSpec, day: date | None, valid: pl.DataFrame,
    rejected: pl.DataFrame, batch_id: str, delivery: Path, now: datetime,
) -> PartitionIngest:
    write_parquet_atomic(with_lineage(valid, batch_id, delivery, now), raw_path(settings, spec.name, day))
    qpath = quarantine_path(settings, spec.name, day)
    if rejected.height:
        write_parquet_atomic(with_lineage(rejected, batch_id, delivery, now), qpath)
    else:
        remove_if_exists(qpath)  # a clean re-delivery clears the day's old rejects
    return PartitionIngest(day, valid.height + rejected.height, valid.height, rejected.height,
                           _reason_counts(rejected))


def days_in(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def by_day(df: pl.DataFrame, column: str, days: list[date]) -> dict[date, pl.DataFrame]:
    """Each day's rows in one pass over the frame (an empty frame of the same schema for a day
    without rows, so its partition is still rewritten)."""
    parts = {key[0]: part for key, part in df.partition_by(column, as_dict=True).items()} if df.height else {}
    return {day: parts.get(day, df.clear()) for day in days}


def _move_to_rejected(text: pl.DataFrame, res: ContractResult, misplaced: pl.Expr, reason: pl.Expr) -> ContractResult:
    """Reject valid rows that sit in the wrong place, kept as delivered (text) like any reject."""
    moved = res.valid.filter(misplaced)
    if not moved.height:
        return res
    as_delivered = (
        text.join(moved.select("_source_row", DATE_COLUMN), on="_source_row")
        .with_columns(reason.alias(REASON_COLUMN))
        .select(res.rejected.columns)
    )
    return ContractResult(
        valid=res.valid.filter(~misplaced),
        rejected=pl.concat([res.rejected, as_delivered], how="vertical_relaxed"),
        unexpected_columns=res.unexpected_columns,
    )


def ingest(
    settings: Settings, spec: SourceSpec, run_id: str,
    start: date | None = None, end: date | None = None, now: datetime | None = None,
) -> IngestSummary:
    """Ingest the days ``[start, end)`` of a daily source, or the whole of a reference source."""
    now = now or datetime.now(timezone.utc)
    short = run_id[:8]
    if not spec.is_partitioned:
        delivery = spec.delivery_path()
        res = apply_contract(spec, read_delivery(spec, delivery))
        part = _write_partition(settings, spec, None, res.valid, res.rejected,
                                f"{spec.name}/{short}", delivery, now)
        return _summary(spec, [part], res, 0, [delivery])

    assert start is not None and end is not None, "daily sources need a window"
    days = days_in(start, end)
    parts: list[PartitionIngest] = []
    undated = 0
    files: list[Path] = []
    last: ContractResult | None = None
    if spec.one_file_per_day:
        for day in days:
            delivery = spec.delivery_path(day)
            text = read_delivery(spec, delivery)
            # In a day's own file every row belongs to that day: a row dated otherwise is rejected.
            res = _move_to_rejected(
                text, apply_contract(spec, text), pl.col(DATE_COLUMN) != day,
                pl.format("dated {}, outside delivery {}", pl.col(DATE_COLUMN), pl.lit(str(day))),
            )
            rejected = res.rejected.with_columns(pl.lit(day).alias(DATE_COLUMN))
            parts.append(_write_partition(settings, spec, day, res.valid, rejected,
                                          f"{spec.name}/{day}/{short}", delivery, now))
            files.append(delivery)
            last = res
    else:
        delivery = spec.delivery_path()
        text = read_delivery(spec, delivery)
        # Rows dated outside every declared partition would never be ingested by any run:
        # they go to the undated quarantine instead of vanishing.
        declared = spec.partitioning
        res = last = _move_to_rejected(
            text, apply_contract(spec, text),
            ~pl.col(DATE_COLUMN).is_between(declared.start, declared.end, closed="left"),
            pl.format("dated {}, outside the declared partitions [{}, {})", pl.col(DATE_COLUMN),
                      pl.lit(str(declared.start)), pl.lit(str(declared.end))),
        )
        valid, rejected = by_day(res.valid, DATE_COLUMN, days), by_day(res.rejected, DATE_COLUMN, days)
        for day in days:
            parts.append(_write_partition(
                settings, spec, day, valid[day], rejected[day], f"{spec.name}/{day}/{short}", delivery, now,
            ))
        undated_rows = res.rejected.filter(
            ~pl.col(DATE_COLUMN).is_between(declared.start, declared.end, closed="left").fill_null(False)
        )
        upath = undated_quarantine_path(settings, spec.name, delivery)
        if undated_rows.height:
            write_parquet_atomic(with_lineage(undated_rows, f"{spec.name}/undated/{short}", delivery, now), upath)
        else:
            remove_if_exists(upath)
        undated = undated_rows.height
        files.append(delivery)
    return _summary(spec, parts, last, undated, files)


def _summary(spec, parts, res: ContractResult | None, undated: int, files: list[Path]) -> IngestSummary:
    schema = {}
    if res is not None:
        schema = {c: str(t) for c, t in res.valid.schema.items() if c not in ("_source_row", DATE_COLUMN)}
        schema.update({"_batch_id": "String", "_source_file": "String", "_source_row": "UInt32",
                       "_ingested_at": "Datetime(UTC)"})
    return IngestSummary(
        source=spec.name, partitions=parts, undated_quarantined=undated,
        unexpected_columns=res.unexpected_columns if res else [], schema=schema,
        files=sorted({str(f) for f in files}),
    )
