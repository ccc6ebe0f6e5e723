"""The delivery volume contract: is a delivery's row count plausible before it replaces a partition?

A header-only or half-cut re-delivery is well-formed, so the schema contract lets it through and
it would silently replace a good partition (2013-01-05: 720 flights became 0). Each source's
``volume`` (sources.yml) sets a floor per partition: ``min_rows``, and ``max_drop`` below the
median of the trailing days' raw partitions, whose row counts come from the parquet footers
(no data read). A delivery under the floor fails the raw asset before anything is written,
unless an approver overrides it; every override is appended to ``raw/_volume_overrides.jsonl``.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from resources.core.parquet_io import append_lines, is_local
from resources.core.settings import Settings
from resources.raw.sources import SourceSpec, VolumeContract

OVERRIDE_AUDIT_FILE = "_volume_overrides.jsonl"


class VolumeContractError(RuntimeError):
    """A delivery holds fewer rows than its source's volume contract allows; nothing was written."""


@dataclass(frozen=True)
class VolumeOverride:
    """An approver's permission to let partitions below the volume contract through."""

    approver: str
    reason: str
    days: tuple[date, ...] = ()  # daily sources: the partitions allowed; reference sources: none

    @classmethod
    def parse(cls, days: Iterable[str], approver: str, reason: str) -> VolumeOverride:
        if not approver.strip() or not reason.strip():
            raise ValueError("allow_volume_override needs a non-blank approver and reason")
        parsed = []
        for d in days:
            try:
                parsed.append(date.fromisoformat(str(d).strip()))
            except ValueError as exc:
                raise ValueError(f"allow_volume_override: day {d!r} is not a YYYY-MM-DD date") from exc
        return cls(approver, reason, tuple(sorted(set(parsed))))


@dataclass(frozen=True)
class VolumeCheck:
    """One partition's (or a reference file's) delivered volume against its contract."""

    day: date | None
    file: str  # declared location
    rows: int  # rows the partition would hold (well-formed, contract-valid)
    quarantined: int
    min_rows: int
    trailing_median: float | None  # reference sources: the current snapshot's rows
    trailing_found: int  # how many trailing partitions the median is over
    floor: int  # the least number of rows accepted (0 when an empty delivery may pass)
    passed: bool
    overridden: bool = False
    replaced: int | None = None  # rows of the partition a re-delivery replaces

    @property
    def ratio(self) -> float | None:
        return self.rows / self.trailing_median if self.trailing_median else None

    def describe(self, spec: SourceSpec, path: Path) -> str:
        where = f"partition {self.day}" if self.day else "the whole file"
        vc = spec.volume
        assert vc is not None
        rules = [f"at least {vc.min_rows} rows (min_rows)"]
        if self.trailing_median is not None and vc.max_drop is not None:
            basis = (
                f"median of the {self.trailing_found} trailing raw partition(s) in {vc.trailing_days} days"
                if self.day
                else "the current snapshot"
            )
            rules.append(
                f"no more than a {vc.max_drop:.0%} drop below the {basis}, "
                f"{self.trailing_median:g} rows (so >= {math.ceil(self.trailing_median * (1 - vc.max_drop))})"
            )
        if self.replaced is not None and vc.max_shrink is not None:
            rules.append(
                f"a re-delivery keeps at least {1 - vc.max_shrink:.0%} of the {self.replaced} rows it "
                f"replaces (max_shrink {vc.max_shrink:g}, so >= {math.ceil(self.replaced * (1 - vc.max_shrink))})"
            )
        if self.rows == 0 and not vc.may_be_empty:
            rules.append("a non-empty delivery (may_be_empty: false)")
        return (
            f"source {spec.name!r}: delivery {path} for {where} holds {self.rows} valid rows "
            f"({self.quarantined} more quarantined); the volume contract expects "
            f"{self.floor} or more: " + "; ".join(rules)
        )


def footer_rows(path: Path) -> int | None:
    """Row count from a parquet footer (no data pages read), None if there is no file."""
    try:
        if is_local(path):
            return pq.read_metadata(path).num_rows
        with path.open("rb") as fh:  # the lakehouse on object storage (resources/core/parquet_io.py)
            return pq.read_metadata(fh).num_rows
    except FileNotFoundError:
        return None
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a damaged or hand-edited file
        raise VolumeContractError(
            f"cannot read the row count of the existing raw partition {path} (needed for the trailing "
            f"median): {exc}. Re-ingest that partition to repair it."
        ) from exc


def trailing_counts(day: date, days: int, pending: dict[date, int], on_disk: Callable[[date], int | None]) -> list[int]:
    """Row counts of the ``days`` before ``day``: this run's own rows for days it is about to
    write, else the raw partition's footer; days without a partition are left out."""
    counts = []
    for back in range(1, days + 1):
        d = day - timedelta(days=back)
        n = pending[d] if d in pending else on_disk(d)
        if n is not None:
            counts.append(n)
    return counts


def check_volume(
    contract: VolumeContract,
    day: date | None,
    file: str,
    rows: int,
    quarantined: int,
    reference: list[int],
    replaced: int | None = None,
) -> VolumeCheck:
    """``reference``: the trailing partitions' (or current snapshot's) row counts, maybe none;
    ``replaced``: the rows of the partition this delivery replaces, None for a first delivery."""
    median = float(statistics.median(reference)) if reference else None
    floor = contract.min_rows
    if median is not None and contract.max_drop is not None:
        floor = max(floor, math.ceil(median * (1 - contract.max_drop)))
    if replaced and contract.max_shrink is not None:
        floor = max(floor, math.ceil(replaced * (1 - contract.max_shrink)))
    if rows == 0:
        passed = contract.may_be_empty
        floor = 0 if passed else max(floor, 1)
    else:
        passed = rows >= floor
    return VolumeCheck(
        day,
        file,
        rows,
        quarantined,
        contract.min_rows,
        median,
        len(reference),
        floor,
        passed,
        replaced=replaced or None,
    )


def apply_override(
    checks: list[VolumeCheck], override: VolumeOverride | None, partitioned: bool, window: tuple[date, date] | None
) -> tuple[list[VolumeCheck], list[date]]:
    """Mark the failing checks the override covers; returns the checks and the override's unused days.
    An override naming a day outside the run's window is refused (a typo must not pass silently)."""
    if override is None:
        return checks, []
    if partitioned:
        if not override.days:
            raise ValueError("allow_volume_override on a daily source must list its days (YYYY-MM-DD)")
        assert window is not None
        outside = [d for d in override.days if not window[0] <= d < window[1]]
        if outside:
            raise ValueError(
                f"allow_volume_override names day(s) {[str(d) for d in outside]} outside "
                f"this run's partitions [{window[0]}, {window[1]})"
            )
    elif override.days:
        raise ValueError("allow_volume_override on a reference source takes no days (it covers the file)")
    out, used = [], set()
    for c in checks:
        if not c.passed and (not partitioned or c.day in override.days):
            out.append(VolumeCheck(**(asdict(c) | {"overridden": True})))
            used.add(c.day)
        else:
            out.append(c)
    return out, [d for d in override.days if d not in used]


def override_audit_path(settings: Settings) -> Path:
    return settings.raw_dir / OVERRIDE_AUDIT_FILE


def audit_overrides(
    settings: Settings, source: str, run_id: str, override: VolumeOverride, checks: list[VolumeCheck], now: datetime
) -> list[dict]:
    """Append one JSON line per overridden partition, before any partition is replaced; strings
    are stored verbatim (json-escaped), so quotes or ``$()`` in a reason stay as typed."""
    rows = [
        {
            "at": now.isoformat(),
            "run_id": run_id,
            "source": source,
            "partition": c.day.isoformat() if c.day else None,
            "file": c.file,
            "delivered_rows": c.rows + c.quarantined,
            "raw_rows": c.rows,
            "quarantined_rows": c.quarantined,
            "expected_min_rows": c.floor,
            "min_rows": c.min_rows,
            "trailing_median": c.trailing_median,
            "approver": override.approver,
            "reason": override.reason,
        }
        for c in checks
        if c.overridden
    ]
    # One O_APPEND write: a concurrent run's lines land before or after, never inside.
    append_lines(override_audit_path(settings), [json.dumps(r, ensure_ascii=False) for r in rows])
    return rows


def read_override_audit(settings: Settings) -> list[dict]:
    path = override_audit_path(settings)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
