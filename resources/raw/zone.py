"""The raw zone: deliveries as delivered (typed by contract) plus lineage columns.

Layout under the lakehouse root::

    raw/<source>/delivery_date=YYYY-MM-DD/part.parquet     daily sources, one file per partition
    raw/<source>/part.parquet                              reference sources
    quarantine/<source>/delivery_date=YYYY-MM-DD/part.parquet   rejected rows with `_reason`
    quarantine/<source>/undated/part.parquet               rows whose date cannot be read
    raw/_volume_overrides.jsonl                            one line per audited volume override
    raw_archive/<zone>/<source>/delivery_date=.../<sha>.parquet  every replaced batch (archive.py)

Re-ingesting a partition rewrites exactly its files (atomically), so it never duplicates. Every
partition of a run is read and checked against the volume contract first; if one fails, none
is written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from resources.core.parquet_io import remove_if_exists, write_parquet_atomic
from resources.core.settings import Settings
from resources.raw.archive import keep_replaced
from resources.raw.ingest import (
    DATE_COLUMN,
    RAGGED_PREFIX,
    REASON_COLUMN,
    ContractResult,
    apply_contract,
    read_delivery,
    with_lineage,
)
from resources.raw.sources import SourceSpec
from resources.raw.volume import (
    VolumeCheck,
    VolumeContractError,
    VolumeOverride,
    apply_override,
    audit_overrides,
    check_volume,
    footer_rows,
    trailing_counts,
)

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
    volume_checks: list[VolumeCheck] = field(default_factory=list)
    overrides: list[dict] = field(default_factory=list)  # the audit rows this run appended
    unused_override_days: list[date] = field(default_factory=list)

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
    # Count per column-level reason ("column 'x': ..." parts), not per full message; a ragged
    # record counts once under its width ("row has 16 fields, header has 19").
    counts: Counter = Counter()
    for msg in rejected[REASON_COLUMN].to_list():
        if msg.startswith(RAGGED_PREFIX):
            counts[msg.split(" (")[0]] += 1
            continue
        for part in msg.split("; "):
            counts[part.split(":")[0]] += 1
    return counts


@dataclass
class _Pending:
    """A partition read and checked, not yet written."""

    day: date | None
    valid: pl.DataFrame
    rejected: pl.DataFrame
    batch_id: str
    path: Path  # the file as resolved on this machine: for messages
    location: str  # as declared in sources.yml: for the lineage column


def _write_partition(
    settings: Settings, spec: SourceSpec, p: _Pending, now: datetime, present: tuple[set[str] | None, set[str] | None]
) -> PartitionIngest:
    """``present``: ``_present`` of the raw and the quarantine folder, listed before any write."""
    valid = with_lineage(p.valid, p.batch_id, p.location, now)
    rpath = raw_path(settings, spec.name, p.day)
    if _there(rpath, p.day, present[0]):  # a re-delivery keeps the old batch
        keep_replaced(settings, "raw", spec.name, p.day, rpath, valid, p.batch_id, now)
    write_parquet_atomic(valid, rpath)
    qpath = quarantine_path(settings, spec.name, p.day)
    rejected = with_lineage(p.rejected, p.batch_id, p.location, now) if p.rejected.height else None
    had_rejects = _there(qpath, p.day, present[1])
    if had_rejects:
        keep_replaced(settings, "quarantine", spec.name, p.day, qpath, rejected, p.batch_id, now)
    if rejected is not None:
        write_parquet_atomic(rejected, qpath)
    elif had_rejects:
        remove_if_exists(qpath)  # a clean re-delivery clears the day's old rejects (kept in the archive)
    return PartitionIngest(
        p.day, p.valid.height + p.rejected.height, p.valid.height, p.rejected.height, _reason_counts(p.rejected)
    )


def _present(settings: Settings, base: Path, spec: SourceSpec) -> set[str] | None:
    """On object storage, the partition folders under ``base`` (a zone's folder of the source)
    that hold a file, or the single file's name: one listing instead of a request per day, where
    each absent day was a 404 of ~20-40 ms through s3fs, several per day of a backfill. None on a
    local root, whose checks stay a stat of each path just before it is written."""
    if not settings.remote:
        return None
    if not spec.is_partitioned:
        return {"part.parquet"} if (base / "part.parquet").exists() else set()
    return {f.parent.name for f in base.glob(f"{PARTITION_KEY}=*/part.parquet")}


def _there(path: Path, day: date | None, present: set[str] | None) -> bool:
    if present is None:
        return path.exists()
    return (path.parent.name if day else path.name) in present


def _volume_checks(
    settings: Settings, spec: SourceSpec, pending: list[_Pending], present: set[str] | None
) -> list[VolumeCheck]:
    """Each pending partition against the contract. Days outside the source's declared range
    expect no delivery and are not checked."""
    contract = spec.volume
    if contract is None:
        return []
    if not spec.is_partitioned:
        p = pending[0]
        previous = footer_rows(raw_path(settings, spec.name)) if present is None or present else None
        return [
            check_volume(
                contract,
                None,
                p.location,
                p.valid.height,
                p.rejected.height,
                [previous] if previous is not None else [],
                previous,
            )
        ]
    declared = spec.partitioning
    rows = {p.day: p.valid.height for p in pending}
    footers: dict[date, int | None] = {}

    def on_disk(d: date) -> int | None:
        if d not in footers:
            path = raw_path(settings, spec.name, d)
            footers[d] = footer_rows(path) if present is None or _there(path, d, present) else None
        return footers[d]

    return [
        check_volume(
            contract,
            p.day,
            p.location,
            p.valid.height,
            p.rejected.height,
            trailing_counts(p.day, contract.trailing_days, rows, on_disk),
            on_disk(p.day),
        )
        for p in pending
        if declared.start <= p.day < declared.end
    ]


def _refuse(spec: SourceSpec, pending: list[_Pending], failing: list[VolumeCheck]) -> VolumeContractError:
    paths = {p.day: p.path for p in pending}
    shown = [c.describe(spec, paths[c.day]) for c in failing[:10]]
    more = f"\n... and {len(failing) - 10} more partition(s)" if len(failing) > 10 else ""
    how = (
        f"ops: {{raw__{spec.name}: {{config: {{allow_volume_override: {{"
        + (f"days: [{', '.join(str(c.day) for c in failing)}], " if spec.is_partitioned else "")
        + "approver: ..., reason: ...}}}}"
    )
    return VolumeContractError(
        f"{len(failing)} delivery volume(s) outside the contract in resources/raw/sources.yml; nothing was "
        f"written:\n"
        + "\n".join(shown)
        + more
        + f"\nIf the delivery is genuinely this small, re-run with the audited override: {how}"
    )


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
    settings: Settings,
    spec: SourceSpec,
    run_id: str,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
    override: VolumeOverride | None = None,
) -> IngestSummary:
    """Ingest the days ``[start, end)`` of a daily source, or the whole of a reference source.

    Every partition is read and checked against the volume contract before any is written;
    ``override`` lets failing ones through and is audited first."""
    now = now or datetime.now(timezone.utc)
    short = run_id[:8]
    undated_rows: pl.DataFrame | None = None
    if not spec.is_partitioned:
        delivery = spec.delivery_path()
        res = apply_contract(spec, read_delivery(spec, delivery))
        pending = [_Pending(None, res.valid, res.rejected, f"{spec.name}/{short}", delivery, spec.declared_location())]
    else:
        assert start is not None and end is not None, "daily sources need a window"
        pending, res, undated_rows = _read_daily(spec, days_in(start, end), short)

    present = (
        _present(settings, settings.raw_dir / spec.name, spec),
        _present(settings, settings.quarantine_dir / spec.name, spec),
    )
    checks = _volume_checks(settings, spec, pending, present[0])
    checks, unused = apply_override(
        checks, override, spec.is_partitioned, (start, end) if spec.is_partitioned else None
    )
    failing = [c for c in checks if not c.passed and not c.overridden]
    if failing:
        raise _refuse(spec, pending, failing)
    audited = audit_overrides(settings, spec.name, run_id, override, checks, now) if override else []

    parts = [_write_partition(settings, spec, p, now, present) for p in pending]
    undated = 0
    if undated_rows is not None:
        location, path = spec.declared_location(), spec.delivery_path()
        upath = undated_quarantine_path(settings, spec.name, path)
        if undated_rows.height:
            write_parquet_atomic(with_lineage(undated_rows, f"{spec.name}/undated/{short}", location, now), upath)
        else:
            remove_if_exists(upath)
        undated = undated_rows.height
    summary = _summary(spec, parts, res, undated, sorted({p.path for p in pending}))
    summary.volume_checks, summary.overrides, summary.unused_override_days = checks, audited, unused
    return summary


def _read_daily(
    spec: SourceSpec, days: list[date], short: str
) -> tuple[list[_Pending], ContractResult | None, pl.DataFrame | None]:
    """Each day's valid and rejected rows (and, for a single file, the undated rejects)."""
    pending: list[_Pending] = []
    if spec.one_file_per_day:
        res: ContractResult | None = None
        for day in days:
            delivery = spec.delivery_path(day)
            text = read_delivery(spec, delivery)
            # In a day's own file every row belongs to that day: a row dated otherwise is rejected.
            res = _move_to_rejected(
                text,
                apply_contract(spec, text),
                pl.col(DATE_COLUMN) != day,
                pl.format("dated {}, outside delivery {}", pl.col(DATE_COLUMN), pl.lit(str(day))),
            )
            rejected = res.rejected.with_columns(pl.lit(day).alias(DATE_COLUMN))
            pending.append(
                _Pending(day, res.valid, rejected, f"{spec.name}/{day}/{short}", delivery, spec.declared_location(day))
            )
        return pending, res, None
    delivery = spec.delivery_path()
    text = read_delivery(spec, delivery)
    # Rows dated outside every declared partition would never be ingested by any run:
    # they go to the undated quarantine instead of vanishing.
    declared = spec.partitioning
    res = _move_to_rejected(
        text,
        apply_contract(spec, text),
        ~pl.col(DATE_COLUMN).is_between(declared.start, declared.end, closed="left"),
        pl.format(
            "dated {}, outside the declared partitions [{}, {})",
            pl.col(DATE_COLUMN),
            pl.lit(str(declared.start)),
            pl.lit(str(declared.end)),
        ),
    )
    valid, rejected = by_day(res.valid, DATE_COLUMN, days), by_day(res.rejected, DATE_COLUMN, days)
    location = spec.declared_location()
    pending = [
        _Pending(day, valid[day], rejected[day], f"{spec.name}/{day}/{short}", delivery, location) for day in days
    ]
    undated_rows = res.rejected.filter(
        ~pl.col(DATE_COLUMN).is_between(declared.start, declared.end, closed="left").fill_null(False)
    )
    return pending, res, undated_rows


def _summary(spec, parts, res: ContractResult | None, undated: int, files: list[Path]) -> IngestSummary:
    schema = {}
    if res is not None:
        schema = {c: str(t) for c, t in res.valid.schema.items() if c not in ("_source_row", DATE_COLUMN)}
        schema.update(
            {"_batch_id": "String", "_source_file": "String", "_source_row": "UInt32", "_ingested_at": "Datetime(UTC)"}
        )
    return IngestSummary(
        source=spec.name,
        partitions=parts,
        undated_quarantined=undated,
        unexpected_columns=res.unexpected_columns if res else [],
        schema=schema,
        files=sorted({str(f) for f in files}),
    )
