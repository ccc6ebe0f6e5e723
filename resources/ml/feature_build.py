"""Build a window's features, audit them for leakage, and store one parquet file per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

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


# Days built per pass. A pass holds its days' flights plus the 28 days of history before them;
# the whole year in one pass held every flight and feature at once (~12 GB of features alone at
# SF=100). A flight's features read only its own day and the days before it, so passes give the
# same values as one (tests/test_ml.py checks a two-month window both ways).
FEATURE_CHUNK_DAYS = 31


def build_and_store_features(settings: Settings, start: date, end: date,
                             chunk_days: int = FEATURE_CHUNK_DAYS) -> FeatureBuild:
    """Features of [start, end), in passes of ``chunk_days``. The leakage audit of the window's
    first and last day runs before anything is written, so a leaking feature fails the build with
    the files unchanged."""
    days = days_in(start, end)
    checked = sorted({days[0], days[-1]})
    for day in checked:
        assert_no_leakage(load_feature_inputs(settings, day, day + timedelta(days=1)), day)
    rows = {}
    for i in range(0, len(days), chunk_days):
        chunk = days[i:i + chunk_days]
        a, b = chunk[0], chunk[-1] + timedelta(days=1)
        features = build_features(load_feature_inputs(settings, a, b), a, b)
        for day, part in by_day(features, "flight_date", chunk).items():
            write_parquet_atomic(part, day_file(features_dir(settings), day))
            rows[day] = part.height
    write_parquet_atomic(
        pl.DataFrame([{"name": f.name, "description": f.description, "dtype": f.dtype, "kind": f.kind,
                       "owner": f.owner} for f in FEATURES]),
        feature_definitions_path(settings),
    )
    return FeatureBuild(rows, checked)
