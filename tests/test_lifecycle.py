"""The model lifecycle's rules as pure functions: what a sequence of audit events means."""

import pytest

from resources.ml.registry import lifecycle as lc

pytestmark = pytest.mark.fast


def ev(event, version, **kw):
    return {"event": event, "version": version, **kw}


def test_status_follows_the_events_and_one_version_is_production_at_a_time():
    events = [
        ev("registered", "v1"),
        ev("preproduction_passed", "v1"),
        ev("promoted", "v1"),
        ev("registered", "v2"),
        ev("preproduction_passed", "v2"),
        ev("promoted", "v2"),
        ev("registered_backtest", "b1"),
    ]
    status = lc.statuses(events)
    assert status == {"v1": lc.RETIRED, "v2": lc.PRODUCTION, "b1": lc.BACKTEST}
    assert lc.production_version(status) == "v2"
    assert lc.production_history(events) == ["v1", "v2"]


def test_promotion_policy_names_each_refusal():
    status = {"v1": lc.PRODUCTION, "v2": lc.PREPRODUCTION, "v3": lc.CANDIDATE, "b": lc.BACKTEST}
    assert "approver and reason" in lc.promotion_refusal(status, "v2", "  ", "why", 0.8, 0.7)
    assert "approver and reason" in lc.promotion_refusal(status, "v2", "ann", "", 0.8, 0.7)
    assert "candidate, not pre-production" in lc.promotion_refusal(status, "v3", "ann", "why", 0.8, 0.7)
    assert "backtest, not pre-production" in lc.promotion_refusal(status, "b", "ann", "why", 0.9, 0.7)
    assert "unknown" in lc.promotion_refusal(status, "nope", "ann", "why", 0.9, 0.7)
    assert "does not beat production v1" in lc.promotion_refusal(status, "v2", "ann", "why", 0.7, 0.7)
    assert lc.promotion_refusal(status, "v2", "ann", "why", 0.71, 0.7) is None
    # The first production model has nothing to beat.
    assert lc.promotion_refusal({"v2": lc.PREPRODUCTION}, "v2", "ann", "why", 0.5, None) is None


def test_rollback_returns_to_the_previous_production_and_needs_one():
    events = [
        ev("registered", "v1"),
        ev("preproduction_passed", "v1"),
        ev("promoted", "v1"),
        ev("registered", "v2"),
        ev("preproduction_passed", "v2"),
        ev("promoted", "v2"),
    ]
    status = lc.statuses(events)
    assert lc.rollback_target(events, status) == "v1"
    assert lc.rollback_refusal(status, "v1", "ann", "bad") is None
    after = events + [ev("rolled_back", "v1")]
    assert lc.production_version(lc.statuses(after)) == "v1"
    assert lc.rollback_target(after, lc.statuses(after)) == "v2"  # rolling back a rollback
    first = events[:3]
    assert "no earlier production" in lc.rollback_refusal(
        lc.statuses(first), lc.rollback_target(first, lc.statuses(first)), "a", "b"
    )


def test_each_horizon_has_its_own_production_model_promotions_and_rollbacks():
    events = [
        ev("registered", "d1"),
        ev("preproduction_passed", "d1"),
        ev("promoted", "d1"),
        ev("registered", "n1", horizon="nowcast_2h"),
        ev("preproduction_passed", "n1"),
        ev("promoted", "n1"),
        ev("registered", "d2", horizon="day_ahead"),
        ev("preproduction_passed", "d2"),
        ev("promoted", "d2"),
        ev("rollback_refused", None, horizon="nowcast_2h"),
    ]
    day_ahead, nowcast = lc.for_horizon(events, "day_ahead"), lc.for_horizon(events, "nowcast_2h")
    # Promoting d2 retires d1 only: the nowcast's production model stays.
    assert lc.statuses(day_ahead) == {"d1": lc.RETIRED, "d2": lc.PRODUCTION}
    assert lc.statuses(nowcast) == {"n1": lc.PRODUCTION}
    assert lc.statuses_of_every_horizon(events) == {"d1": lc.RETIRED, "d2": lc.PRODUCTION, "n1": lc.PRODUCTION}
    assert lc.rollback_target(day_ahead, lc.statuses(day_ahead)) == "d1"
    assert lc.rollback_target(nowcast, lc.statuses(nowcast)) is None  # never to another horizon's model
    assert events[-1] in nowcast and events[-1] not in day_ahead
    # A registration without a horizon (records before horizons existed) is day-ahead.
    assert lc.horizons(events) == {"d1": "day_ahead", "n1": "nowcast_2h", "d2": "day_ahead"}


def test_promoting_with_nothing_in_preproduction_says_to_train_first():
    assert "train one first" in lc.promotion_refusal({"v1": lc.PRODUCTION}, "", "ann", "why", float("nan"), None)


def test_an_artifact_pickled_before_the_ml_modules_moved_still_loads(tmp_path):
    """A registered artifact's bytes are sealed by its sha256, so the blend's old module path
    (resources.ml.training) must still resolve when the registry loads it."""
    import pickle
    import subprocess
    import sys

    from resources.ml.model.training import MeanOfProbabilities

    old = pickle.dumps(MeanOfProbabilities([]), protocol=0).replace(
        b"resources.ml.model.training", b"resources.ml.training"
    )
    assert b"resources.ml.training\n" in old
    (tmp_path / "model.pkl").write_bytes(old)
    load = "import joblib, sys; print(type(joblib.load(sys.argv[1])).__name__)"
    fresh = [sys.executable, "-c"]
    before = subprocess.run([*fresh, load, tmp_path / "model.pkl"], capture_output=True, text=True)
    assert "No module named 'resources.ml.training'" in before.stderr
    after = subprocess.run(
        [*fresh, f"from resources.ml.registry.storage import name_moved_modules; name_moved_modules(); {load}"]
        + [tmp_path / "model.pkl"],
        capture_output=True,
        text=True,
    )
    assert after.stdout.strip() == "MeanOfProbabilities", after.stderr


def test_the_recorded_code_version_covers_every_ml_module(tmp_path, monkeypatch):
    """A training record's code_version changes with any module of resources/ml/, subpackages
    included, so `make reproduce` can say the code differs."""
    import shutil

    from resources.core.settings import REPO_ROOT
    from resources.ml.model import candidate

    shutil.copytree(REPO_ROOT / "resources" / "ml", tmp_path / "resources" / "ml")
    monkeypatch.setattr(candidate, "REPO_ROOT", tmp_path)
    before = candidate.code_version()
    with (tmp_path / "resources" / "ml" / "features" / "point_in_time.py").open("a") as fh:
        fh.write("\n# edited\n")
    after = candidate.code_version()
    assert before.split("+ml-")[1] != after.split("+ml-")[1]
