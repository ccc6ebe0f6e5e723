"""Pre-production proof and approval-gated promotion: what the ML assets ask of the registry."""

from __future__ import annotations

from datetime import date, timedelta

from sklearn.metrics import roc_auc_score

from resources.core.settings import Settings
from resources.ml.features.availability import DAY_AHEAD, HORIZONS
from resources.ml.lake import feature_days, load_labels, read_features
from resources.ml.model.scoring import now_utc, score_frame, validate_scores
from resources.ml.model.training import predict
from resources.ml.registry.lifecycle import CANDIDATE, PREPRODUCTION
from resources.ml.registry.storage import Registry


def prove_newest_candidate(settings: Settings, horizon: str = DAY_AHEAD) -> dict:
    """Score the latest feature day of the horizon (no labels) with its newest candidate and check
    the result against the production scores schema; the outcome is recorded either way."""
    registry = Registry(settings)
    version = registry.latest(CANDIDATE, horizon)
    if version is None:
        raise ValueError(f"no {horizon} candidate model in the registry: materialize its model_candidate asset")
    days = feature_days(settings, horizon)
    if not days:
        raise ValueError(f"no {horizon} features: materialize its flight_features asset first")
    sample = read_features(settings, days[-1], days[-1] + timedelta(days=1), horizon)
    try:
        scores = score_frame(registry.load(version), sample, version, now_utc())
        validate_scores(scores, sample)
    except Exception as exc:
        registry.record_preproduction(version, False, {"error": str(exc)})
        raise
    details = {
        "sample_day": f"flight_date={days[-1]}",
        "rows": sample.height,
        "p_late_mean": round(float(scores["p_late"].mean()), 4),
    }
    registry.record_preproduction(version, True, details)
    return {"model_version": version, "horizon": horizon, "status": PREPRODUCTION, **details}


def production_auc_on_window(settings: Settings, registry: Registry, split: dict, horizon: str = DAY_AHEAD) -> float:
    """The horizon's production model's ROC AUC on a candidate's validation window: like for like.
    The gate decides on validation, never on the test window (the holdout is judged once, when
    the candidate is registered, and decides nothing)."""
    start, end = date.fromisoformat(split["validation_start"]), date.fromisoformat(split["test_start"])
    window = read_features(settings, start, end, horizon).join(load_labels(settings, start, end), on="flight_id")
    model = registry.load(registry.production_version(horizon))
    return float(roc_auc_score(window["is_late"].to_numpy(), predict(model, window)))


def apply_decision(
    settings: Settings, action: str, approver: str, reason: str, version: str = "", horizon: str = DAY_AHEAD
) -> dict:
    """Promote (default: the horizon's newest pre-production version) or roll back the horizon's
    production model; refusals raise PromotionRefused and are audited by the registry. A version
    given by name is promoted for the horizon it was trained for."""
    if horizon not in HORIZONS:
        raise ValueError(f"horizon must be one of {', '.join(HORIZONS)}, got {horizon!r}")
    registry = Registry(settings)
    if action == "rollback":
        return registry.rollback(approver, reason, horizon)
    if action != "promote":
        raise ValueError(f"action must be 'promote' or 'rollback', got {action!r}")
    version = version or registry.latest(PREPRODUCTION, horizon) or ""
    horizon = registry.horizon_of(version) if version else horizon
    # Only a pre-production version is compared (any other is refused by the registry, and a
    # backtest model has no validation window to compare on).
    comparable = bool(version) and registry.statuses(horizon).get(version) == PREPRODUCTION
    record = registry.record(version) if comparable else {}
    candidate_auc = float((record.get("validation") or {}).get("roc_auc", float("nan")))
    production_auc = None
    if comparable and registry.production_version(horizon):
        production_auc = production_auc_on_window(settings, registry, record["split"], horizon)
    return registry.promote(version, approver, reason, candidate_auc, production_auc)
