"""The logistic member's solver, side by side in one run: lbfgs (scikit-learn's default) against
newton-cholesky, in the production recipe (blend of boosted trees and logistic model, 100k-row
training sample, seed 0) fitted on Jan-Aug: validation ROC AUC on Sep-Oct, holdout on Nov-Dec, the
walk-forward backtest on Mar, Jun, Sep and Dec (mean ROC AUC), the logistic member's fit time and
iterations, and the largest difference in a blend probability between the two. Reads the lakehouse's
features (`make run` first).

    .venv/bin/python benchmarks/logistic_solver.py
"""

from __future__ import annotations

import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.model_trees import walk_forward  # noqa: E402
from resources.core.settings import Settings  # noqa: E402
from resources.ml.model.backtest import first_feature_day  # noqa: E402
from resources.ml.model.training import CANDIDATES, TimeSplit, fit, predict_chunks  # noqa: E402
from resources.ml.model.window import LabelledWindow  # noqa: E402

warnings.filterwarnings("ignore")
SPLIT = TimeSplit(date(2013, 1, 1), date(2013, 9, 1), date(2013, 11, 1), date(2014, 1, 1))
SOLVERS = ["lbfgs", "newton-cholesky"]


def main() -> int:
    settings = Settings.from_env()
    window = LabelledWindow(settings, SPLIT)
    train, available = window.sample("train")
    first = first_feature_day(settings)
    base = {k: v for k, v in CANDIDATES["blend"][0].items() if k != "solver"}
    print(f"train sample {train.height:,} of {available:,} flights")
    print("| solver | validation | holdout | backtest (mean of Mar, Jun, Sep, Dec) | logistic fit s | iterations |")
    print("|---|---|---|---|---|---|")
    validation_p = {}
    for solver in SOLVERS:
        params = {**base, "solver": solver}
        t = time.perf_counter()
        logistic = fit("logistic", {"C": base["C"], "solver": solver}, train)
        fit_s = time.perf_counter() - t
        model = fit("blend", params, train)
        y_v, p_v, _ = predict_chunks({"m": model}, window.chunks("validation"))
        y_t, p_t, _ = predict_chunks({"m": model}, window.chunks("test"))
        validation_p[solver] = p_v["m"]
        monthly = walk_forward(window, first, params)
        print(
            f"| {solver} | {roc_auc_score(y_v, p_v['m']):.4f} | {roc_auc_score(y_t, p_t['m']):.4f} | "
            f"{np.mean(monthly):.4f} ({len(monthly)} months) | {fit_s:.1f} | "
            f"{int(logistic.named_steps['model'].n_iter_[0])} |",
            flush=True,
        )
    diff = np.abs(validation_p[SOLVERS[0]] - validation_p[SOLVERS[1]])
    print(f"blend probabilities on validation: max |difference| {diff.max():.4f}, mean {diff.mean():.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
