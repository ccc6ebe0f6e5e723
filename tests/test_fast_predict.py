"""``predict`` encodes each categorical combination once (resources/ml/model/fast_predict.py) and must
return exactly what the fitted pipeline's own ``predict_proba`` returns, for every model family,
with nulls, unseen categories and an empty frame."""

import numpy as np
import polars as pl
import pytest

from resources.ml.features.catalog import CATEGORICAL, FEATURE_NAMES
from resources.ml.model import fast_predict
from resources.ml.model.training import BUILDERS, NUMERIC, MeanOfProbabilities, predict, to_pandas_features

LEVELS = {
    "carrier": ["AA", "B6", "DL", "UA", "9E", "OO"],
    "origin": ["EWR", "JFK", "LGA"],
    "dest": [f"D{i:02d}" for i in range(40)],
    "plane_engine_type": ["Turbo-fan", "Turbo-jet", None],
}


def _features(n: int, seed: int, unseen: bool = False) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {}
    for name in FEATURE_NAMES:
        if name in CATEGORICAL:
            levels = LEVELS.get(name, ["a", "b", "c"]) + (["NEW-1", 'it\'s "new"'] if unseen else [])
            columns[name] = pl.Series(name, [levels[i] for i in rng.integers(0, len(levels), n)], dtype=pl.String)
        else:
            values = rng.normal(size=n)
            values[rng.random(n) < 0.05] = np.nan
            columns[name] = pl.Series(name, values).fill_nan(None)
    late = (rng.random(n) < 0.3 + 0.2 * (columns["carrier"] == "UA").to_numpy()).astype(np.int8)
    return pl.DataFrame(columns).with_columns(pl.Series("is_late", late))


PARAMS = {
    "logistic": {"C": 1.0, "solver": "newton-cholesky"},
    "hist_gradient_boosting": {"max_iter": 20, "max_leaf_nodes": 15, "min_samples_leaf": 20},
    "blend": {"C": 1.0, "solver": "newton-cholesky", "max_iter": 20, "min_samples_leaf": 20},
}


@pytest.mark.fast
@pytest.mark.parametrize("family", sorted(PARAMS))
def test_fast_predict_equals_the_pipeline_bit_for_bit(family):
    train = _features(3_000, seed=1)
    pipeline = BUILDERS[family](**PARAMS[family]).fit(to_pandas_features(train), train["is_late"].to_numpy())
    scoring = _features(5_000, seed=2, unseen=True)  # unseen carriers, quotes, null categoricals and numerics
    frame = fast_predict.model_frame(scoring, CATEGORICAL, NUMERIC)
    fast = fast_predict.predict_proba(pipeline, frame, set(CATEGORICAL))
    assert fast is not None, "the fast path must handle every registered family"
    expected = pipeline.predict_proba(to_pandas_features(scoring))
    assert np.array_equal(fast, expected)
    assert np.array_equal(predict(pipeline, scoring), expected[:, 1])
    # Row order is kept: scoring the rows reversed returns the reversed probabilities.
    assert np.array_equal(predict(pipeline, scoring.reverse()), expected[::-1, 1])
    assert predict(pipeline, scoring.head(0)).shape == (0,)
    # A served request: exactly the pipeline's own answer for those rows. Not expected[:3]: the
    # logistic member's matrix product may round differently for 3 rows than for 5,000 (BLAS
    # kernels by batch shape; seen on one CPU, not another).
    served = scoring.head(3)
    assert np.array_equal(predict(pipeline, served), pipeline.predict_proba(to_pandas_features(served))[:, 1])


@pytest.mark.fast
def test_unknown_model_shapes_are_predicted_the_ordinary_way():
    train = _features(2_000, seed=3)
    x, y = to_pandas_features(train), train["is_late"].to_numpy()
    logistic = BUILDERS["logistic"](**PARAMS["logistic"]).fit(x, y)
    bare = logistic.steps[1][1]  # an estimator without its ColumnTransformer

    class Wrapped:  # a model that is neither a pipeline nor a blend of pipelines
        classes_ = np.array([0, 1])

        def predict_proba(self, frame):
            return logistic.predict_proba(frame)

    frame = fast_predict.model_frame(train, CATEGORICAL, NUMERIC)
    assert fast_predict.predict_proba(Wrapped(), frame, set(CATEGORICAL)) is None
    assert fast_predict.predict_proba(MeanOfProbabilities([logistic, bare]), frame, set(CATEGORICAL)) is None
    assert np.array_equal(predict(Wrapped(), train), logistic.predict_proba(x)[:, 1])


@pytest.mark.fast
def test_slices_give_the_probabilities_of_one_call_up_to_rounding(monkeypatch):
    from resources.ml.model import training

    train = _features(3_000, seed=4)
    pipeline = BUILDERS["blend"](**PARAMS["blend"]).fit(to_pandas_features(train), train["is_late"].to_numpy())
    scoring = _features(2_500, seed=5, unseen=True)
    whole = predict(pipeline, scoring)
    # 2,500 rows: three calls, the last (400 rows, below FAST_PREDICT_MIN_ROWS) the ordinary way.
    monkeypatch.setattr(training, "PREDICT_ROWS", 1_050)
    # Equal up to rounding: the logistic member's matrix product sums a batch of another size in
    # another order (the bar for scoring is 1e-9).
    assert np.max(np.abs(predict(pipeline, scoring) - whole)) <= 1e-12
    assert np.array_equal(whole, pipeline.predict_proba(to_pandas_features(scoring))[:, 1])
