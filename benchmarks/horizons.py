"""What each prediction horizon can do: the production recipe on each horizon's stored features.

For each horizon (resources/ml/features/availability.py): the production blend (100k-row training sample,
seed 0) fitted on Jan-Aug and scored on validation (Sep-Oct), and the walk-forward: every month
from February on scored by a model fitted on the months before it. Attempts are chosen on these
figures only. ``--holdout`` also judges Nov-Dec, once per kept feature set: run it when a choice is
made, never to make one; without it no month of the holdout is scored, walk-forward included.
``--without`` drops features from the production set, which reproduces the attempts table of
docs/model.md (the set before a feature was kept). Reads the lakehouse's features (`make run` first).

    .venv/bin/python benchmarks/horizons.py [--holdout] [--horizons nowcast_2h] [--without name,name]
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
    args.add_argument("--horizons", default=",".join(HORIZONS))
    args.add_argument("--without", default="", help="features left out of the production set, comma-separated")
    opts = args.parse_args(argv)
    settings, params = Settings.from_env(), CANDIDATES["blend"][0]
    without = {n for n in opts.without.split(",") if n}
    months = MONTHS if opts.holdout else [m for m in MONTHS if m < SPLIT.test_start]
    print(
        "| horizon | features | validation (Sep-Oct) | walk-forward "
        + " | ".join(f"{m:%b}" for m in months)
        + " | walk-forward mean (Feb-Oct) |"
        + (" holdout (Nov-Dec) | holdout Brier |" if opts.holdout else "")
    )
    print("|---" * (4 + len(months) + (3 if opts.holdout else 1)) + "|")
    horizons = opts.horizons.split(",")
    unknown = without - {n for h in horizons for n in feature_names(h)}
    if unknown:
        raise SystemExit(f"--without: no horizon has the features {sorted(unknown)}")
    for horizon in horizons:
        names = tuple(n for n in feature_names(horizon) if n not in without)
        window = LabelledWindow(settings, SPLIT, horizon)
        train, _ = window.sample("train")
        model = fit("blend", params, train, names=names)
        y, p, _ = predict_chunks({"m": model}, window.chunks("validation"))
        validation = roc_auc_score(y, p["m"])
        monthly = []
        for start in months:
            before, _ = window.sample((SPLIT.train_start, start))
            y_m, p_m, _ = predict_chunks(
                {"m": fit("blend", params, before, names=names)}, window.chunks((start, month_end(start)))
            )
            monthly.append(roc_auc_score(y_m, p_m["m"]))
        selection = [a for m, a in zip(months, monthly) if m < SPLIT.test_start]
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
