"""The training sample (deterministic, recorded) and batched scoring."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from resources.ml.model.training import TRAIN_SAMPLE_ROWS, TRAIN_SAMPLE_SEED, sample_record, training_sample


def _frame(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    return pl.DataFrame(
        {
            "flight_id": [f"f{i:07d}" for i in range(n)],
            "flight_date": [date(2013, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 200, n)],
            "is_late": rng.integers(0, 2, n),
        }
    )


@pytest.mark.fast
def test_sample_is_deterministic_and_independent_of_row_order():
    data = _frame(5_000)
    a = training_sample(data, 1_000, seed=TRAIN_SAMPLE_SEED)
    b = training_sample(data.reverse(), 1_000, seed=TRAIN_SAMPLE_SEED)
    assert a.height == 1_000
    assert a["flight_id"].to_list() == b["flight_id"].to_list()
    assert a["flight_id"].n_unique() == 1_000
    assert training_sample(data, 1_000, seed=1)["flight_id"].to_list() != a["flight_id"].to_list()


@pytest.mark.fast
def test_small_windows_are_not_sampled():
    data = _frame(300)
    assert training_sample(data, 1_000).equals(data)
    assert training_sample(data, None).equals(data)


@pytest.mark.fast
def test_sample_record_names_rows_and_seed():
    assert TRAIN_SAMPLE_SEED == 0 and TRAIN_SAMPLE_ROWS == 100_000
    assert sample_record(224_910) == {"rows": 100_000, "available": 224_910, "seed": 0, "max_rows": 100_000}
    assert sample_record(31_000) == {"rows": 31_000, "available": 31_000, "seed": 0, "max_rows": 100_000}
    assert sample_record(500, max_rows=None)["rows"] == 500


def test_the_window_sample_is_training_samples_rows_read_a_month_at_a_time(ml_lakehouse):
    """Training reads its window in chunks and picks the sample from the row count alone: the same
    rows in the same order as ``training_sample`` over the whole window held at once."""

    from resources.ml.lake import load_labels, read_features
    from resources.ml.model.training import TimeSplit
    from resources.ml.model.window import LabelledWindow

    settings = ml_lakehouse.settings
    split = TimeSplit(date(2013, 1, 1), date(2013, 2, 1), date(2013, 2, 15), date(2013, 3, 1))
    window = LabelledWindow(settings, split)
    whole = read_features(settings, date(2013, 1, 1), date(2013, 2, 1)).join(
        load_labels(settings, date(2013, 1, 1), date(2013, 2, 1)), on="flight_id", how="inner"
    )
    for rows in (5_000, 20_000):
        sample, available = window.sample("train", rows)
        assert available == whole.height > rows
        assert sample.equals(training_sample(whole, rows).select(sample.columns))
    everything, available = window.sample("train", None)
    assert everything.height == available and everything["flight_id"].is_sorted()
    assert sum(c.height for c in window.chunks("all")) == len(
        set(pl.concat([c.select("flight_id") for c in window.chunks("all")])["flight_id"])
    )
