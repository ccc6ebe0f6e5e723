"""Fewer trees, as good? The boosted member's learning rate and tree count, side by side in one run.

For each (learning_rate, max_iter): the production recipe (blend of the boosted trees and the
logistic model, 100k-row training sample, seed 0) fitted on Jan-Aug, validation ROC AUC on
Sep-Oct, holdout on Nov-Dec, the walk-forward backtest on four months a quarter apart (Mar, Jun, Sep,
Dec; each fitted on the months before it, mean of their ROC AUC), fit time and end-to-end predict throughput on Nov-Dec.
Reads the lakehouse's features (`make run` first), a month at a time like training.

    .venv/bin/python benchmarks/model_trees.py
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

from resources.core.settings import Settings  # noqa: E402
from resources.ml.model.backtest import backtest_month, first_feature_day  # noqa: E402
from resources.ml.model.training import CANDIDATES, TimeSplit, fit, predict_chunks  # noqa: E402
from resources.ml.model.window import LabelledWindow  # noqa: E402

warnings.filterwarnings("ignore")
SPLIT = TimeSplit(date(2013, 1, 1), date(2013, 9, 1), date(2013, 11, 1), date(2014, 1, 1))
CONFIGS = [(0.05, 300), (0.1, 150), (0.15, 100), (0.2, 75)]
MONTHS = [date(2013, m, 1) for m in (3, 6, 9, 12)]  # a quarter apart: 4 walk-forward fits per config


def walk_forward(window: LabelledWindow, first: date, params: dict, months: list[date] = MONTHS) -> list[float]:
    """ROC AUC of the blend with ``params`` on each month, fitted on the months before it."""
    aucs = []
    for start in months:
        end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        result = backtest_month(window, first, start, end, "blend", params, "experiment")
        if result is not None and result.metrics.get("roc_auc") is not None:
            aucs.append(result.metrics["roc_auc"])
    return aucs


def main() -> int:
    settings = Settings.from_env()
    window = LabelledWindow(settings, SPLIT)
    train, available = window.sample("train")
    first = first_feature_day(settings)
    base = CANDIDATES["blend"][0]  # (its own learning rate and trees are replaced by each config)
    print(f"train sample {train.height:,} of {available:,} flights; blend of boosted trees and logistic")
    print(
        "| learning rate, trees | validation | holdout | backtest (mean of Mar, Jun, Sep, Dec) | fit s | predict rows/s |"
    )
    print("|---|---|---|---|---|---|")
    for lr, trees in CONFIGS:
        params = {**base, "learning_rate": lr, "max_iter": trees}
        t = time.perf_counter()
        model = fit("blend", params, train)
        fit_s = time.perf_counter() - t
        y_v, p_v, _ = predict_chunks({"m": model}, window.chunks("validation"))
        y_t, p_t, seconds = predict_chunks({"m": model}, window.chunks("test"))
        monthly = walk_forward(window, first, params)
        print(
            f"| {lr}, {trees} | {roc_auc_score(y_v, p_v['m']):.4f} | {roc_auc_score(y_t, p_t['m']):.4f} | "
            f"{np.mean(monthly):.4f} ({len(monthly)} months) | {fit_s:.1f} | {len(y_t) / seconds['m']:,.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
