"""Where monitoring's outputs live under the lakehouse root: daily rows, drift profiles, alerts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from resources.core.settings import Settings


def monitoring_dir(settings: Settings) -> Path:
    return settings.root / "monitoring"


def alerts_path(settings: Settings) -> Path:
    return monitoring_dir(settings) / "alerts.jsonl"


def profiles_dir(settings: Settings) -> Path:
    return monitoring_dir(settings) / "profiles"


def month_key(day: date) -> str:
    return f"{day:%Y-%m}"


def month_file(settings: Settings, kind: str, month: str) -> Path:
    return monitoring_dir(settings) / kind / f"month={month}.parquet"


def day_file(settings: Settings, kind: str, day: date) -> Path:
    return monitoring_dir(settings) / kind / f"day={day.isoformat()}.parquet"
