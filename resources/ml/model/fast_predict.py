"""P(late) from a fitted pipeline, exactly as ``pipeline.predict_proba`` computes it, without the
per-row string work.

Scikit-learn's encoders look every categorical string up in Python (``OrdinalEncoder`` for the
boosted member, ``OneHotEncoder`` for the logistic one), after a polars -> pandas conversion that
turns four string columns into object arrays: on the year's 336,776 flights that was about half
of ``predict`` (the logistic member's transform 4.4 of its 6.2 s, measured under load). Yet the
four categoricals (carrier, origin, dest, engine type) take only 847 distinct combinations in the
year. So each member's own fitted encoder encodes each *distinct*
combination once, and rows gather their encoded row by index; numeric columns go through the
member's own fitted transformers (imputer, scaler) or pass through, blocks are stacked exactly as
``ColumnTransformer`` stacks them, and the member's own fitted estimator (the trees, the logistic
regression) predicts. Nothing is re-implemented: every number comes from the fitted objects, so
the result equals ``predict_proba`` on the same rows bit for bit (tests/test_fast_predict.py, every
registered family; benchmarks/scoring_year.py compares both paths on the year).

Anything this does not recognise (another pipeline shape, a transformer over a mix of
categorical and numeric columns) is predicted the ordinary way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

MISSING = "__missing__"  # what to_pandas_features puts in a null categorical


def model_frame(features: pl.DataFrame, categorical: Sequence[str], numeric: Sequence[str]) -> pl.DataFrame:
    """The model's input as ``to_pandas_features`` builds it (categoricals as strings with nulls
    as ``__missing__``, numerics as Float64), kept in polars."""
    return features.select(
        *[pl.col(c).cast(pl.String).fill_null(MISSING) for c in categorical],
        *[pl.col(c).cast(pl.Float64) for c in numeric],
    )


def _columns(ct: ColumnTransformer, columns) -> list[str]:
    """A transformer's columns by name (the fitted remainder lists positions)."""
    if isinstance(columns, slice) or np.ndim(columns) == 0:
        columns = list(np.atleast_1d(ct.feature_names_in_[columns]))
    return [str(ct.feature_names_in_[c]) if isinstance(c, (int, np.integer)) else str(c) for c in columns]


def encode_distinct(transformer, frame: pl.DataFrame, columns: list[str]):
    """``transformer.transform`` of ``frame[columns]``, computed once per distinct row: valid for
    any transformer whose output row depends only on its input row (every encoder)."""
    keys = frame.select(columns)
    distinct = keys.unique(maintain_order=True)
    encoded = transformer.transform(distinct.to_pandas())
    index = keys.join(
        distinct.with_row_index("__distinct"), on=columns, how="left", nulls_equal=True, maintain_order="left"
    )["__distinct"].to_numpy()
    return encoded[index]


def transform(ct: ColumnTransformer, frame: pl.DataFrame, categorical: set[str]):
    """``ct.transform`` of the pandas frame ``to_pandas_features`` would build; None when ``ct``
    holds a block this does not handle."""
    blocks = []
    for _name, transformer, columns in ct.transformers_:
        names = _columns(ct, columns)
        if transformer == "drop" or not names:
            continue
        if transformer == "passthrough":
            if categorical & set(names):
                return None
            blocks.append(frame.select(names).to_numpy())
        elif set(names) <= categorical:
            blocks.append(encode_distinct(transformer, frame, names))
        elif categorical & set(names):
            return None
        else:
            blocks.append(transformer.transform(frame.select(names).to_pandas()))
    # ColumnTransformer._hstack: one sparse matrix when the fitted output was sparse, else dense.
    if ct.sparse_output_:
        return sparse.hstack(blocks).tocsr()
    return np.hstack([b.toarray() if sparse.issparse(b) else b for b in blocks])


def member_proba(pipeline, frame: pl.DataFrame, categorical: set[str]) -> np.ndarray | None:
    """``pipeline.predict_proba`` for a Pipeline([ColumnTransformer, estimator]); None otherwise."""
    if not (
        isinstance(pipeline, Pipeline)
        and len(pipeline.steps) == 2
        and isinstance(pipeline.steps[0][1], ColumnTransformer)
    ):
        return None
    x = transform(pipeline.steps[0][1], frame, categorical)
    return None if x is None else pipeline.steps[1][1].predict_proba(x)


def predict_proba(pipeline, frame: pl.DataFrame, categorical: set[str]) -> np.ndarray | None:
    """Class probabilities of a fitted pipeline or a mean of them (the blend), or None when the
    model's shape is not one of these (the caller predicts the ordinary way)."""
    members = getattr(pipeline, "members", None)
    if members is None:
        return member_proba(pipeline, frame, categorical)
    probas = [member_proba(m, frame, categorical) for m in members]
    if any(p is None for p in probas):
        return None
    return np.mean(probas, axis=0)  # what MeanOfProbabilities.predict_proba computes
