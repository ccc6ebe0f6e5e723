"""Pre-production proof and approval-gated promotion: what the ML assets ask of the registry."""

from __future__ import annotations

from datetime import date

from sklearn.metrics import roc_auc_score

from resources.core.parquet_io import read_parquet
from resources.core.settings import Settings
from resources.ml.lifecycle import CANDIDATE, PREPRODUCTION
from resources.ml.registry import Registry
from resources.ml.scoring import now_utc, score_frame, validate_scores
from resources.ml.store import features_dir, load_labels, read_days
from resources.ml.training import predict


def prove_newest_candidate(settings: Settings) -> dict:
    """Score the latest feature day (no labels) with the newest candidate and check the result
    against the production scores schema; the outcome is recorded either way."""
    registry = Registry(settings)
    version = registry.latest(CANDIDATE)
    if version is None:
        raise ValueError("no candidate model in the registry: materialize ml/model_candidate")
    days = sorted(features_dir(settings).glob("flight_date=*/part.parquet"))
    sample = read_parquet(days[-1])
    try:
        scores = score_frame(registry.load(version), sample, version, now_utc())
        validate_scores(scores, sample)
    except Exception as exc:
        registry.record_preproduction(version, False, {"error": str(exc)})
        raise
    details = {"sample_day": days[-1].parent.name, "rows": sample.height,
               "p_late_mean": round(float(scores["p_late"].mean()), 4)}
    registry.record_preproduction(version, True, details)
    return {"model_version": version, "status": PREPRODUCTION, **details}


def production_auc_on_window(settings: Settings, registry: Registry, split: dict) -> float:
    """The current production model's ROC AUC on a candidate's test window: like for like."""
    start, end = date.fromisoformat(split["test_start"]), date.fromisoformat(split["test_end"])
    window = read_days(features_dir(settings), start, end).join(load_labels(settings, start, end), on="flight_id")
    return float(roc_auc_score(window["is_late"].to_numpy(), predict(registry.load(registry.production_version()), window)))


def apply_decision(settings: Settings, action: str, approver: str, reason: str, version: str = "") -> dict:
    """Promote (default: the newest pre-production version) or roll back; refusals raise
    PromotionRefused and are audited by the registry."""
    registry = Registry(settings)
    if action == "rollback":
        return registry.rollback(approver, reason)
    if action != "promote":
        raise ValueError(f"action must be 'promote' or 'rollback', got {action!r}")
    version = version or registry.latest(PREPRODUCTION) or ""
    record = registry.record(version) if version else {"test": {"roc_auc": float("nan")}}
    production_auc = None
    if registry.production_version() and version:
        production_auc = production_auc_on_window(settings, registry, record["split"])
    return registry.promote(version, approver, reason, record["test"]["roc_auc"], production_auc)
