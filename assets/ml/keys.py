"""Asset keys of the ML layer, shared by its modules, the jobs and other layers.

Features, candidates, pre-production and scores exist once per prediction horizon: the day-ahead
keys are the plain names (what the operations teams read), the nowcast's carry its horizon.
The production model is one asset, the approval gate of every horizon."""

import dagster as dg

from resources.ml.features.availability import DAY_AHEAD, NOWCAST


def horizon_key(name: str, horizon: str) -> dg.AssetKey:
    return dg.AssetKey(["ml", name if horizon == DAY_AHEAD else f"{name}_{horizon}"])


FEATURES_KEY = horizon_key("flight_features", DAY_AHEAD)  # day-ahead: what production scores read
NOWCAST_FEATURES_KEY = horizon_key("flight_features", NOWCAST)
CANDIDATE_KEY = horizon_key("model_candidate", DAY_AHEAD)
PREPRODUCTION_KEY = horizon_key("model_preproduction", DAY_AHEAD)
PRODUCTION_KEY = dg.AssetKey(["ml", "production_model"])
SCORES_KEY = horizon_key("flight_delay_scores", DAY_AHEAD)
NOWCAST_SCORES_KEY = horizon_key("flight_delay_scores", NOWCAST)
ML_KINDS = {"scikit-learn", "parquet"}
