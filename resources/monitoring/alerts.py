"""The alert log (``monitoring/alerts.jsonl``, append-only) and the months a check finds in breach.

The log is a file, not a warehouse lake table: on the SQLite catalog every lake write must take
the warehouse lock (a second, unlocked writer makes the holder's commit fail with "database is
locked", tried), and the sensors that record alerts cannot wait out a dbt build: a run-failure
sensor's cursor moves on even when its evaluation fails, so a timed-out append would lose the
alert. An append to a file never waits. The catalog publishes it as ``monitoring.alerts``."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from resources.core.parquet_io import append_lines
from resources.core.settings import Settings
from resources.monitoring.drift import PREDICTION
from resources.monitoring.paths import alerts_path
from resources.monitoring.samples import MIN_OUT_OF_SAMPLE_FLIGHTS


def append_alert(settings: Settings, alert: dict) -> dict:
    alert = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **alert}
    append_lines(alerts_path(settings), [json.dumps(alert, sort_keys=True, default=str)])
    return alert


def read_alerts(settings: Settings) -> list[dict]:
    path = alerts_path(settings)
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def drift_breaches(entries: list[dict]) -> dict[str, dict]:
    """Judged drift months that alarm, with what moved."""
    return {
        e["period"]: {
            "model_version": e["model_version"],
            "sample": e.get("sample"),
            "drift_share": round(e["drift_share"], 4),
            "threshold": e["threshold"],
            "drifted_features": e["drifted_feature_names"],
            "prediction_drift": None if e.get("prediction_drift") is None else round(e["prediction_drift"], 4),
            "prediction_drifted": e.get("prediction_drifted", False),
            "drifted": ([PREDICTION] if e.get("prediction_drifted") else []) + e["drifted_feature_names"],
            "reason": e.get("reason", ""),
        }
        for e in entries
        if e["kind"] == "drift" and e.get("alarm")
    }


def quality_breaches(entries: list[dict]) -> tuple[dict[str, dict], int]:
    """Months whose *out-of-sample* ROC AUC fell more than the threshold below the holdout.
    In-sample figures are never considered. Returns (breaches, months checked)."""
    checked = [
        e
        for e in entries
        if e["kind"] == "quality"
        and e.get("roc_auc") is not None
        and e.get("auc_drop") is not None
        and e.get("out_of_sample_flights", 0) >= MIN_OUT_OF_SAMPLE_FLIGHTS
    ]
    return (
        {
            e["period"]: {
                "model_version": e["model_version"],
                "sample": e["sample"],
                "roc_auc_out_of_sample": round(e["roc_auc"], 4),
                "auc_drop": round(e["auc_drop"], 4),
                "threshold": e["threshold"],
                "out_of_sample_flights": e["out_of_sample_flights"],
            }
            for e in checked
            if e["auc_drop"] > e["threshold"]
        },
        len(checked),
    )
