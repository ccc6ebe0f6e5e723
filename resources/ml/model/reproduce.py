"""Rebuild a registered model from its record and show it is the same model.

    make reproduce VERSION=flight-delay-...     # default: the production model

Retrains the recorded family and parameters on the recorded training window, from the features
as they are now, and compares both models' predictions on the recorded test window (equal means
a max abs difference <= 1e-9). It says what differs when anything does: the data version (hash
of the labelled window's rows), the code version (git commit + hash of resources/ml), or the
predictions. Fits are deterministic (fixed random_state, no early stopping), so the same data
and code give the same model.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

import numpy as np

from resources.core.settings import Settings
from resources.ml.model.candidate import code_version
from resources.ml.model.training import TimeSplit, fit, predict_chunks
from resources.ml.model.window import LabelledWindow
from resources.ml.registry.storage import Registry

TOLERANCE = 1e-9


def reproduce(settings: Settings, version: str | None = None) -> dict:
    registry = Registry(settings)
    version = version or registry.production_version()
    if not version:
        raise ValueError("no production model: give a model version (ml.model_registry)")
    record = registry.record(version)
    split = TimeSplit(
        *(date.fromisoformat(record["split"][k]) for k in ("train_start", "validation_start", "test_start", "test_end"))
    )
    window = LabelledWindow(settings, split)
    data_version = window.data_version()
    differs = []
    if data_version != record.get("data_version"):
        differs.append(
            f"data version {data_version} != recorded {record.get('data_version')} "
            "(the labelled window's rows changed: a re-delivery, or features rebuilt by other code; records "
            "written before 2026-12-02 fingerprinted the window whole, not month by month)"
        )
    code = code_version()
    if code != record.get("code_version"):
        differs.append(f"code version {code} != recorded {record.get('code_version')}")
    train, available = window.sample("train")  # the rows fit() would draw from the whole window
    rebuilt = fit(record["family"], record["params"], train)
    _, p, _ = predict_chunks({"new": rebuilt, "registered": registry.load(version)}, window.chunks("test"))
    p_new, p_registered = p["new"], p["registered"]
    max_diff = float(np.max(np.abs(p_new - p_registered))) if len(p_new) else 0.0
    if max_diff > TOLERANCE:
        differs.append(
            f"predictions on the test window differ by up to {max_diff:.3g} "
            f"({int((np.abs(p_new - p_registered) > TOLERANCE).sum())} of {len(p_new)} flights)"
        )
    return {
        "model_version": version,
        "family": record["family"],
        "train_rows": available,
        "test_rows": len(p_new),
        "max_abs_diff": max_diff,
        "equal": max_diff <= TOLERANCE,
        "data_version": data_version,
        "code_version": code,
        "differs": differs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resources.ml.model.reproduce", description=__doc__.split("\n")[0])
    parser.add_argument("version", nargs="?", default="")
    args = parser.parse_args(argv)
    out = reproduce(Settings.from_env(), args.version or None)
    verdict = "reproduced" if out["equal"] else "NOT reproduced"
    print(
        f"{out['model_version']} ({out['family']}): {verdict}: retrained on {out['train_rows']:,} rows, "
        f"max abs difference {out['max_abs_diff']:.3g} over {out['test_rows']:,} test flights"
    )
    for line in out["differs"]:
        print(f"  differs: {line}")
    return 0 if out["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
