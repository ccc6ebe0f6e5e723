"""Attempts on the boosted member and the training sample, chosen on validation and walk-forward
only (no holdout): for each horizon and variant, validation ROC AUC (Sep-Oct, fitted on Jan-Aug)
and the walk-forward Feb-Oct (each month fitted on the months before it).

- ``base``: the production recipe (blend of boosted trees and the logistic model, 100k-row sample);
- ``full``: the same on every training row instead of the sample;
- ``lgbm_blend``: LightGBM of the production shape (100 trees, 31 leaves, learning rate 0.15,
  min 100 rows a leaf) in place of scikit-learn's boosted trees, blended the same way. LightGBM is
  not a dependency of the platform: ``.venv/bin/pip install lightgbm`` first.

Reads the lakehouse's feature tables (`make run` first).

    .venv/bin/python benchmarks/boosted_attempts.py [--variants base,full,lgbm_blend] [--horizons day_ahead,nowcast_2h]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from horizons import MONTHS, SPLIT, month_end  # noqa: E402

from resources.core.settings import Settings  # noqa: E402
from resources.ml.features.availability import HORIZONS  # noqa: E402
from resources.ml.features.catalog import feature_names  # noqa: E402
from resources.ml.model import training  # noqa: E402
from resources.ml.model.window import LabelledWindow  # noqa: E402

warnings.filterwarnings("ignore")
BLEND = training.CANDIDATES["blend"][0]


def lgbm_blend(names, x, y):
    import lightgbm

    categorical, _ = training.split_columns(names)
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    pre = ColumnTransformer(
        [("cat", encoder, list(categorical))], remainder="passthrough", verbose_feature_names_out=False
    )
    model = lightgbm.LGBMClassifier(
        n_estimators=BLEND["max_iter"],
        learning_rate=BLEND["learning_rate"],
        num_leaves=BLEND["max_leaf_nodes"],
        min_child_samples=BLEND["min_samples_leaf"],
        reg_lambda=1.0,
        random_state=0,
        verbose=-1,
    )
    trees = Pipeline([("pre", pre), ("model", model)])
    trees.fit(x, y, model__categorical_feature=list(range(len(categorical))))
    logistic = training.logistic_pipeline(BLEND["C"], BLEND["solver"], names).fit(x, y)
    return training.MeanOfProbabilities([trees, logistic])


def fitter(variant: str, names):
    def fit(data):
        data = training.training_sample(data, None if variant == "full" else training.TRAIN_SAMPLE_ROWS)
        x, y = training.to_pandas_features(data, names), data["is_late"].to_numpy()
        if variant == "lgbm_blend":
            return lgbm_blend(names, x, y)
        return training.blend_pipeline(**BLEND, names=names).fit(x, y)

    return fit


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--variants", default="base,full,lgbm_blend")
    args.add_argument("--horizons", default=",".join(HORIZONS))
    opts = args.parse_args(argv)
    settings = Settings.from_env()
    print("| horizon | variant | validation | walk-forward Feb-Oct | walk-forward mean | seconds |")
    print("|---|---|---|---|---|---|")
    selection = [m for m in MONTHS if m < SPLIT.test_start]
    for horizon in opts.horizons.split(","):
        names = feature_names(horizon)
        window = LabelledWindow(settings, SPLIT, horizon)
        train, _ = window.sample("train", max_rows=None)
        for variant in opts.variants.split(","):
            started, fit = time.perf_counter(), fitter(variant, names)
            y, p, _ = training.predict_chunks({"m": fit(train)}, window.chunks("validation"))
            monthly = []
            for start in selection:
                before, _ = window.sample((SPLIT.train_start, start), max_rows=None)
                y_m, p_m, _ = training.predict_chunks({"m": fit(before)}, window.chunks((start, month_end(start))))
                monthly.append(roc_auc_score(y_m, p_m["m"]))
            print(
                f"| {horizon} | {variant} | {roc_auc_score(y, p['m']):.4f} | "
                + " / ".join(f"{a:.3f}" for a in monthly)
                + f" | {np.mean(monthly):.4f} | {time.perf_counter() - started:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
