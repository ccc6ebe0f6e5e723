"""Asset keys of the ML layer, shared by its modules, the jobs and other layers."""

import dagster as dg

FEATURES_KEY = dg.AssetKey(["ml", "flight_features"])  # day-ahead: what production scores read
NOWCAST_FEATURES_KEY = dg.AssetKey(["ml", "flight_features_nowcast_2h"])
CANDIDATE_KEY = dg.AssetKey(["ml", "model_candidate"])
PREPRODUCTION_KEY = dg.AssetKey(["ml", "model_preproduction"])
PRODUCTION_KEY = dg.AssetKey(["ml", "production_model"])
SCORES_KEY = dg.AssetKey(["ml", "flight_delay_scores"])
ML_KINDS = {"scikit-learn", "parquet"}
