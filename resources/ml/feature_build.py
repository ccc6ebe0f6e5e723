"""Build a window's features, audit them for leakage, and store one parquet file per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from resources.core.parquet_io import write_parquet_atomic
from resources.core.settings import Settings
from resources.ml.features import FEATURES, assert_no_leakage, build_features
from resources.ml.store import day_file, feature_definitions_path, features_dir, load_feature_inputs
from resources.raw.zone import by_day, days_in


@dataclass(frozen=True)
class FeatureBuild:
    rows_by_day: dict[date, int]
    leakage_checked: list[date]

    @property
    def rows(self) -> int:
        return sum(self.rows_by_day.values())


def build_and_store_features(settings: Settings, start: date, end: date) -> FeatureBuild:
    """Features of [start, end). The leakage audit of the window's first and last day runs before
    anything is written, so a leaking feature fails the build with the files unchanged."""
    inputs = load_feature_inputs(settings, start, end)
    days = days_in(start, end)
    checked = sorted({days[0], days[-1]})
    for day in checked:
        assert_no_leakage(inputs, day)
    features = build_features(inputs, start, end)
    rows = {}
    for day, part in by_day(features, "flight_date", days).items():
        write_parquet_atomic(part, day_file(features_dir(settings), day))
        rows[day] = part.height
    write_parquet_atomic(
        pl.DataFrame([{"name": f.name, "description": f.description, "dtype": f.dtype, "kind": f.kind,
                       "owner": f.owner} for f in FEATURES]),
        feature_definitions_path(settings),
    )
    return FeatureBuild(rows, checked)
