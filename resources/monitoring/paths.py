"""Where monitoring's outputs live: its tables in the warehouse lake, drift profiles and reports
under the lakehouse root."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from resources.core.settings import Settings

MONITORING_SCHEMA = "monitoring"  # the warehouse lake's schema of the daily rows
DRIFT_ROWS, QUALITY_ROWS = "daily_drift", "daily_quality"
# What analysts read about each monitoring table (the published catalog's table comments).
MONITORING_TABLE_DESCRIPTIONS = {
    (MONITORING_SCHEMA, DRIFT_ROWS): "One row per scored day and model: flights scored, mean p_late, drift vs "
    "the 42 days before its month. Joined with daily_quality as daily_metrics.",
    (MONITORING_SCHEMA, QUALITY_ROWS): "One row per labelled scored day and model: ROC AUC and late rate.",
}


def monitoring_dir(settings: Settings) -> Path:
    return settings.root / "monitoring"


def alerts_path(settings: Settings) -> Path:
    return monitoring_dir(settings) / "alerts.jsonl"


def profiles_dir(settings: Settings) -> Path:
    return monitoring_dir(settings) / "profiles"


def month_key(day: date) -> str:
    return f"{day:%Y-%m}"
