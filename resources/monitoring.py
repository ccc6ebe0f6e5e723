"""Model monitoring with Evidently (0.7 API): drift of features and predictions against the
model's own reference data, and classification quality once actual arrivals are known.

Periods, chosen for readers and disk: every Evidently HTML embeds ~4-6 MB of scripts, so a report
a day would be ~1.4-2 GB a year. Each month gets one drift and one quality HTML (24 a year); each
day gets a cheap metrics row (no HTML) in ``monitoring/daily_*``.

Actuals: a flight's outcome is final one day after its scheduled date (arrivals after midnight,
diversions resolved). Quality for a month is computed only once every scored day in it is at least
``ACTUALS_LAG_DAYS`` old relative to the clock (``as_of``, today unless a run sets it).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
from sklearn.metrics import roc_auc_score

from resources.ml_features import CATEGORICAL, FEATURE_NAMES
from resources.settings import Settings

# Evidently is imported lazily inside the functions below, after this: no telemetry.
os.environ.setdefault("DO_NOT_TRACK", "1")

ACTUALS_LAG_DAYS = 1
PREDICTION = "p_late"
TARGET = "is_late"
PROJECT = "flight-delay-monitoring"


def monitoring_dir(settings: Settings) -> Path:
    return settings.root / "monitoring"


def alerts_path(settings: Settings) -> Path:
    return monitoring_dir(settings) / "alerts.jsonl"


def workspace_dir(settings: Settings) -> Path:
    return monitoring_dir(settings) / "evidently"


def month_key(day: date) -> str:
    return f"{day:%Y-%m}"


def _usable_columns(*frames: pl.DataFrame) -> list[str]:
    """Features with at least one value in every frame: Evidently refuses an all-null column
    (a calm day has no wind gusts at all)."""
    return [c for c in FEATURE_NAMES if all(f[c].null_count() < f.height for f in frames)]


def _datasets(reference: pl.DataFrame, current: pl.DataFrame, with_target: bool):
    from evidently import BinaryClassification, DataDefinition, Dataset

    features = _usable_columns(reference, current)
    definition = DataDefinition(
        numerical_columns=[c for c in features if c not in CATEGORICAL] + [PREDICTION],
        categorical_columns=[c for c in features if c in CATEGORICAL] + ([TARGET] if with_target else []),
        classification=[BinaryClassification(target=TARGET, prediction_probas=PREDICTION)] if with_target else None,
    )
    cols = [*features, PREDICTION, *([TARGET] if with_target else [])]
    return tuple(Dataset.from_pandas(f.select(cols).to_pandas(), data_definition=definition)
                 for f in (current, reference))


@dataclass
class DriftSummary:
    drift_share: float
    drifted: list[str]
    prediction_drift: float | None
    columns: int


def drift_summary(snapshot) -> DriftSummary:
    """Read the preset's verdicts out of a snapshot: share of drifted columns and which."""
    drifted, share, columns, pred = [], 0.0, 0, None
    for m in snapshot.dict()["metrics"]:
        name = m.get("metric_name", "")
        if name.startswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
        elif name.startswith("ValueDrift("):
            cfg = m.get("config", {})
            column, threshold = cfg.get("column"), cfg.get("threshold")
            value = float(m["value"])
            columns += 1
            if column == PREDICTION:
                pred = value
            # Distances (large samples) drift above the threshold; p-value tests (Evidently picks
            # them for <= 1000 rows, i.e. a single day) drift below it.
            is_pvalue = "p_value" in name
            if threshold is not None and ((value < threshold) if is_pvalue else (value >= threshold)):
                drifted.append(column)
    return DriftSummary(share, sorted(c for c in drifted if c != PREDICTION), pred, columns)


def drift_report(reference: pl.DataFrame, current: pl.DataFrame, drift_share: float):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    return Report([DataDriftPreset(drift_share=drift_share)]).run(*_datasets(reference, current, False))


def quality_report(reference: pl.DataFrame, current: pl.DataFrame):
    from evidently import Report
    from evidently.presets import ClassificationPreset

    return Report([ClassificationPreset()]).run(*_datasets(reference, current, True))


def daily_drift_rows(reference: pl.DataFrame, current: pl.DataFrame, model_version: str,
                     drift_share: float) -> pl.DataFrame:
    """One cheap row per day: the preset's drift count without its per-column widgets (~0.3 s a
    day instead of ~3 s), and the drift of p_late itself."""
    from evidently import Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    rows = []
    for (day,), part in current.sort("flight_date").group_by("flight_date", maintain_order=True):
        snapshot = Report([DriftedColumnsCount(drift_share=drift_share), ValueDrift(column=PREDICTION)]).run(
            *_datasets(reference, part, False))
        values = {m["metric_name"].split("(")[0]: m["value"] for m in snapshot.dict()["metrics"]}
        rows.append({
            "metric_date": day, "model_version": model_version, "flights_scored": part.height,
            "drift_share": float(values["DriftedColumnsCount"]["share"]),
            "drifted_features": int(values["DriftedColumnsCount"]["count"]),
            "prediction_mean": float(part[PREDICTION].mean()),
            "prediction_drift": float(values["ValueDrift"]),
        })
    return pl.DataFrame(rows)


def daily_quality_rows(current: pl.DataFrame, model_version: str) -> pl.DataFrame:
    rows = []
    for (day,), part in current.sort("flight_date").group_by("flight_date", maintain_order=True):
        y = part[TARGET].to_numpy()
        auc = float(roc_auc_score(y, part[PREDICTION].to_numpy())) if 0 < y.sum() < len(y) else None
        rows.append({"metric_date": day, "model_version": model_version, "labelled_flights": part.height,
                     "roc_auc": auc, "late_rate": float(y.mean())})
    return pl.DataFrame(rows)


def missing_actuals(days: list[date], as_of: date) -> list[date]:
    return [d for d in days if d + timedelta(days=ACTUALS_LAG_DAYS) > as_of]


# --- reports on disk and the index -------------------------------------------------------------
def write_report(snapshot, reports_dir: Path, kind: str, period: str, summary: dict) -> Path:
    """HTML plus a JSON sidecar (period, model, headline numbers) that the index is built from."""
    target = reports_dir / kind / f"{kind}_{period}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    snapshot.save_html(str(tmp))
    os.replace(tmp, target)
    sidecar = {"kind": kind, "period": period, "html": str(target.relative_to(reports_dir)),
               "bytes": target.stat().st_size, "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               **summary}
    target.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, sort_keys=True, default=str))
    return target


def build_index(reports_dir: Path) -> Path:
    """reports/index.html: every report on disk, newest period first, relative links (offline)."""
    entries = []
    for sidecar in reports_dir.glob("*/*.json"):
        meta = json.loads(sidecar.read_text())
        if (reports_dir / meta["html"]).exists():
            entries.append(meta)
    entries.sort(key=lambda e: (e["period"], e["kind"]), reverse=True)

    def headline(e: dict) -> str:
        if e["kind"] == "drift":
            return (f"drift share {e['drift_share']:.2f} ({e['drifted_features']} features drifted"
                    + (f": {html.escape(', '.join(e['drifted_feature_names'][:6]))}" if e["drifted_feature_names"] else "")
                    + ")")
        return f"ROC AUC {e['roc_auc']:.3f}, late rate {e['late_rate']:.3f}, {e['labelled_flights']:,} flights"

    rows = "\n".join(
        f'<tr><td>{html.escape(e["period"])}</td><td>{html.escape(e["kind"])}</td>'
        f'<td>{html.escape(e["model_version"])}</td><td>{headline(e)}</td>'
        f'<td><a href="{html.escape(e["html"])}">{html.escape(Path(e["html"]).name)}</a></td></tr>'
        for e in entries
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flight delay model: monitoring reports</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}</style>
</head><body>
<h1>Flight delay model: monitoring reports</h1>
<p>{len(entries)} reports, newest first. Drift compares each month's scored flights with the model's
training reference; quality compares scores with actual arrivals (late = 15+ minutes, cancelled or
diverted). Open offline; no network needed.</p>
<table id="reports"><thead><tr><th>period</th><th>report</th><th>model version</th><th>headline</th><th>file</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""
    index = reports_dir / "index.html"
    reports_dir.mkdir(parents=True, exist_ok=True)
    tmp = index.with_name(".index.html.tmp")
    tmp.write_text(page)
    os.replace(tmp, index)
    return index


def store_in_workspace(settings: Settings, snapshot, name: str) -> str:
    """Keep one run per report name in the Evidently workspace (a re-run replaces it)."""
    from evidently.ui.workspace import Workspace

    ws = Workspace.create(str(workspace_dir(settings)))
    projects = ws.search_project(PROJECT)
    project = projects[0] if projects else ws.create_project(PROJECT, description="Flight delay model monitoring")
    runs_file = workspace_dir(settings) / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else {}
    if name in runs:
        try:
            ws.delete_run(project.id, runs[name])
        except Exception:  # already gone: nothing to replace
            pass
    ref = ws.add_run(project.id, snapshot, name=name)
    runs[name] = str(getattr(ref, "id", ref))
    runs_file.write_text(json.dumps(runs, indent=2, sort_keys=True))
    return runs[name]


def append_alert(settings: Settings, alert: dict) -> dict:
    alert = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **alert}
    path = alerts_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(alert, sort_keys=True, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return alert


def read_alerts(settings: Settings) -> list[dict]:
    path = alerts_path(settings)
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def catalog_views(settings: Settings):
    """The ``monitoring`` schema of the analyst catalog."""
    from resources.catalog import ExternalView, _has_files, _sql_str

    drift = str(monitoring_dir(settings) / "daily_drift" / "*.parquet")
    quality = str(monitoring_dir(settings) / "daily_quality" / "*.parquet")
    labelled = (
        f"left join read_parquet({_sql_str(quality)}) q using (metric_date, model_version)"
        if _has_files(quality) else
        "left join (select null::date as metric_date, null::varchar as model_version, null::bigint as labelled_flights, "
        "null::double as roc_auc, null::double as late_rate) q using (metric_date, model_version)"
    )
    return [
        ExternalView("monitoring", "daily_metrics", drift,
                     "One row per scored day: drift vs the model's reference, and once labelled, ROC AUC and late rate.",
                     query=f"select d.*, q.labelled_flights, q.roc_auc, q.late_rate "
                           f"from read_parquet({_sql_str(drift)}) d {labelled}"),
        ExternalView("monitoring", "alerts", str(alerts_path(settings)) if alerts_path(settings).exists() else drift,
                     "Append-only alert log: failed monitoring checks and failed runs.",
                     query=f"select * from read_json_auto({_sql_str(str(alerts_path(settings)))})"
                     if alerts_path(settings).exists() else
                     "select null::varchar as at, null::varchar as kind, null::varchar as check, "
                     "null::varchar as run_id where false"),
    ]
