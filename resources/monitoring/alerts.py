"""The alert log (``monitoring.alerts`` in the warehouse lake, append-only) and the months a check
finds in breach."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import polars as pl

from resources.core.settings import Settings
from resources.ml.store import append_lake_rows, read_lake_table
from resources.monitoring.drift import PREDICTION
from resources.monitoring.paths import ALERTS_TABLE, MONITORING_SCHEMA
from resources.monitoring.samples import MIN_OUT_OF_SAMPLE_FLIGHTS

ALERT_LOCK_SECONDS = 40.0


def append_alert(settings: Settings, alert: dict) -> dict:
    """Append one alert: its time, kind, check and run as columns analysts filter on, and the
    whole alert as JSON (checks report different fields)."""
    alert = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **alert}
    row = pl.DataFrame(
        {
            "at": [datetime.fromisoformat(alert["at"])],
            "kind": [alert.get("kind")],
            "check": [alert.get("check")],
            "run_id": [alert.get("run_id")],
            "detail": [json.dumps(alert, sort_keys=True, default=str)],
        },
        schema={
            "at": pl.Datetime("us", "UTC"),
            "kind": pl.String,
            "check": pl.String,
            "run_id": pl.String,
            "detail": pl.String,
        },
    )
    # A sensor records alerts: it waits for a writing run a bounded time, then its tick fails and
    # the next tick records the alert (its cursor moves only once the alert is written).
    append_lake_rows(settings, ALERTS_TABLE, row, schema=MONITORING_SCHEMA, lock_timeout_s=ALERT_LOCK_SECONDS)
    return alert


def read_alerts(settings: Settings) -> list[dict]:
    """Every alert, oldest first."""
    log = read_lake_table(settings, ALERTS_TABLE, order_by='"at", rowid', schema=MONITORING_SCHEMA)
    return [json.loads(x) for x in log["detail"]] if log.height else []


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
