"""What each prediction horizon can do: the production recipe on each horizon's stored features.

For each horizon (resources/ml/features/availability.py): the production blend (100k-row training sample,
seed 0) fitted on Jan-Aug and scored on validation (Sep-Oct), and the walk-forward: every month
from February on scored by a model fitted on the months before it. Attempts are chosen on these
figures only. ``--holdout`` also judges Nov-Dec, once per kept feature set: run it when a choice is
made, never to make one. Reads the lakehouse's feature files (`make run` first).

    .venv/bin/python benchmarks/horizons.py [--holdout]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resources.core.settings import Settings  # noqa: E402
from resources.ml.features.availability import HORIZONS  # noqa: E402
from resources.ml.features.catalog import feature_names  # noqa: E402
from resources.ml.model.training import CANDIDATES, TimeSplit, evaluate, fit, predict_chunks  # noqa: E402
from resources.ml.model.window import LabelledWindow  # noqa: E402

warnings.filterwarnings("ignore")
SPLIT = TimeSplit(date(2013, 1, 1), date(2013, 9, 1), date(2013, 11, 1), date(2014, 1, 1))
MONTHS = [date(2013, m, 1) for m in range(2, 13)]


def month_end(start: date) -> date:
    return date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--holdout", action="store_true", help="also judge Nov-Dec (once per kept feature set)")
    opts = args.parse_args(argv)
    settings, params = Settings.from_env(), CANDIDATES["blend"][0]
    print(
        "| horizon | features | validation (Sep-Oct) | walk-forward "
        + " | ".join(f"{m:%b}" for m in MONTHS)
        + " | walk-forward mean (Feb-Oct) |"
        + (" holdout (Nov-Dec) | holdout Brier |" if opts.holdout else "")
    )
    print("|---" * (4 + len(MONTHS) + (3 if opts.holdout else 1)) + "|")
    for horizon in HORIZONS:
        names = feature_names(horizon)
        window = LabelledWindow(settings, SPLIT, horizon)
        train, _ = window.sample("train")
        model = fit("blend", params, train, names=names)
        y, p, _ = predict_chunks({"m": model}, window.chunks("validation"))
        validation = roc_auc_score(y, p["m"])
        monthly = []
        for start in MONTHS:
            before, _ = window.sample((SPLIT.train_start, start))
            y_m, p_m, _ = predict_chunks(
                {"m": fit("blend", params, before, names=names)}, window.chunks((start, month_end(start)))
            )
            monthly.append(roc_auc_score(y_m, p_m["m"]))
        selection = [a for m, a in zip(MONTHS, monthly) if m < SPLIT.test_start]
        row = (
            f"| {horizon} | {len(names)} | {validation:.4f} | "
            + " | ".join(f"{a:.3f}" for a in monthly)
            + f" | {np.mean(selection):.4f} |"
        )
        if opts.holdout:
            y_t, p_t, _ = predict_chunks({"m": model}, window.chunks("test"))
            judged = evaluate(y_t, p_t["m"])
            row += f" {judged['roc_auc']:.4f} | {judged['brier']:.4f} |"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
