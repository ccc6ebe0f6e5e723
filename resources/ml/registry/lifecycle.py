"""The model lifecycle as pure functions of the audit events: no files, no keys, no locks.

Status comes from replaying the (verified) events in order; the promotion and rollback policies
say why a request is refused, or None. ``resources/ml/registry/storage.py`` stores artifacts, records and
the sealed event chain, and asks these functions what the events mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from resources.ml.features.availability import DAY_AHEAD

CANDIDATE, PREPRODUCTION, PRODUCTION, RETIRED = "candidate", "pre-production", "production", "retired"
BACKTEST = "backtest"  # walk-forward models: recorded, never pre-production, so never promotable

_STATUS_OF_EVENT = {"registered": CANDIDATE, "registered_backtest": BACKTEST, "preproduction_passed": PREPRODUCTION}


def horizons(events: Iterable[Mapping]) -> dict[str, str]:
    """The horizon each version serves, from its registration (records before horizons: day-ahead)."""
    return {
        e["version"]: e.get("horizon") or DAY_AHEAD
        for e in events
        if e["event"] in ("registered", "registered_backtest")
    }


def for_horizon(events: Iterable[Mapping], horizon: str) -> list[Mapping]:
    """The events of one horizon's models: each horizon has its own production model, promotions
    and rollbacks, so every rule below is applied to one horizon's events at a time."""
    events = list(events)
    served = horizons(events)
    return [e for e in events if served.get(e.get("version"), e.get("horizon") or DAY_AHEAD) == horizon]


def statuses(events: Iterable[Mapping]) -> dict[str, str]:
    """Each version's status after replaying ``events`` in order (one production at a time)."""
    status: dict[str, str] = {}
    for e in events:
        version, kind = e.get("version"), e["event"]
        if kind in _STATUS_OF_EVENT:
            status[version] = _STATUS_OF_EVENT[kind]
        elif kind in ("promoted", "rolled_back"):
            for other, s in status.items():
                if s == PRODUCTION:
                    status[other] = RETIRED
            status[version] = PRODUCTION
    return status


def statuses_of_every_horizon(events: Iterable[Mapping]) -> dict[str, str]:
    """Each version's status, every horizon's rules applied to its own events."""
    events = list(events)
    out: dict[str, str] = {}
    for horizon in sorted(set(horizons(events).values())):
        out |= statuses(for_horizon(events, horizon))
    return out


def production_version(status: Mapping[str, str]) -> str | None:
    return next((v for v, s in status.items() if s == PRODUCTION), None)


def production_history(events: Iterable[Mapping]) -> list[str]:
    """Versions in the order they became production (rollbacks included)."""
    return [e["version"] for e in events if e["event"] in ("promoted", "rolled_back")]


def latest(status: Mapping[str, str], wanted: str) -> str | None:
    matching = [v for v, s in status.items() if s == wanted]
    return max(matching) if matching else None  # versions start with their UTC registration time


def promotion_refusal(
    status: Mapping[str, str],
    version: str,
    approver: str,
    reason: str,
    candidate_auc: float,
    production_auc: float | None,
) -> str | None:
    """Why ``version`` may not become production, or None. Both AUCs are measured on the
    candidate's validation window, so the comparison is like for like and the holdout decides nothing."""
    current = production_version(status)
    if not approver.strip() or not reason.strip():
        return "a promotion needs a recorded approval: approver and reason are required"
    if not version:
        return (
            "no model of this horizon is in pre-production, so there is nothing to promote: train one "
            "first (the train_model job, or `make run`), or name a version"
        )
    if status.get(version) != PREPRODUCTION:
        return f"{version} is {status.get(version, 'unknown')}, not {PREPRODUCTION}"
    if current and production_auc is not None and candidate_auc <= production_auc:
        return (
            f"{version} does not beat production {current} on the same validation window "
            f"(ROC AUC {candidate_auc:.4f} <= {production_auc:.4f})"
        )
    return None


def rollback_target(events: list[Mapping], status: Mapping[str, str]) -> str | None:
    """The version production returns to: the latest earlier production that is not current."""
    current = production_version(status)
    return next((v for v in reversed(production_history(events)) if v != current), None)


def rollback_refusal(status: Mapping[str, str], target: str | None, approver: str, reason: str) -> str | None:
    if not approver.strip() or not reason.strip():
        return "a rollback needs a recorded approval: approver and reason are required"
    if production_version(status) is None or target is None:
        return "there is no earlier production version to roll back to"
    return None
