"""A registered model is rebuilt from its record with the same predictions, or told what differs."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import polars as pl

from resources.ml.lake import feature_table, read_features, write_lake_days
from resources.ml.model.reproduce import reproduce
from tests.conftest import make_lakehouse


def test_the_production_model_is_reproduced_and_a_changed_day_is_named(ml_lakehouse, tmp_path):
    out = reproduce(ml_lakehouse.settings)
    assert out["equal"] and out["max_abs_diff"] <= 1e-9, out
    assert not any(d.startswith("data version") for d in out["differs"]), out["differs"]

    src = ml_lakehouse.settings.root
    shutil.copytree(src, tmp_path / "lakehouse")
    shutil.copytree(src.parent / f"{src.name}.secrets", tmp_path / "lakehouse.secrets")
    lh = make_lakehouse(tmp_path / "lakehouse")
    jan_10 = date(2013, 1, 10)
    frame = read_features(lh.settings, jan_10, jan_10 + timedelta(days=1))
    write_lake_days(lh.settings, feature_table(), {jan_10: frame.with_columns(pl.col("distance_mi") * 2)})  # edited
    changed = reproduce(lh.settings)
    assert not changed["equal"]
    assert any(d.startswith("data version") for d in changed["differs"])
    assert any(d.startswith("predictions on the test window differ") for d in changed["differs"])
