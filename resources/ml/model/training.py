"""Honest training: time-split data, two scikit-learn pipelines, tuning on validation only,
one judgement on the temporal test window.

Splits are by date, never random: flights of one day share weather and congestion, so a random
split would put near-copies of test rows in training and flatter the model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
import polars as pl
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score, roc_curve
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from resources.ml.features.catalog import CATEGORICAL, FEATURE_NAMES
from resources.ml.model import fast_predict

NUMERIC = tuple(n for n in FEATURE_NAMES if n not in CATEGORICAL)


@dataclass(frozen=True)
class TimeSplit:
    """[train_start, validation_start) / [validation_start, test_start) / [test_start, test_end)."""

    train_start: date
    validation_start: date
    test_start: date
    test_end: date

    def __post_init__(self):
        if not (self.train_start < self.validation_start < self.test_start < self.test_end):
            raise ValueError(f"time split windows must be ordered and non-empty: {self}")

    def assign(self, flight_date: pl.Expr) -> pl.Expr:
        return (
            pl.when(flight_date < self.train_start)
            .then(None)
            .when(flight_date < self.validation_start)
            .then(pl.lit("train"))
            .when(flight_date < self.test_start)
            .then(pl.lit("validation"))
            .when(flight_date < self.test_end)
            .then(pl.lit("test"))
            .otherwise(None)
        )


def split_columns(names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(categorical, numeric) of a model's feature names, in their order."""
    return tuple(n for n in names if n in CATEGORICAL), tuple(n for n in names if n not in CATEGORICAL)


def input_columns(model) -> tuple[str, ...]:
    """The features a fitted model reads (a horizon's; the day-ahead ones for a model without
    recorded names)."""
    members = getattr(model, "members", None) or getattr(model, "estimators_", None)
    names = getattr(members[0] if members else model, "feature_names_in_", None)
    return FEATURE_NAMES if names is None else tuple(str(n) for n in names)


def latest_split(first_day: date, last_labelled_day: date, months: tuple[int, int] = (2, 2)) -> TimeSplit:
    """The windows a candidate is trained on when none are given: test = the last ``months[1]``
    complete months of labels, validation = the ``months[0]`` before, train = everything earlier.
    On the embedded year: Jan-Aug / Sep-Oct / Nov-Dec; when a month closes, each moves by a month."""

    def month_start(d: date, back: int) -> date:
        index = d.year * 12 + d.month - 1 - back
        return date(index // 12, index % 12 + 1, 1)

    following = last_labelled_day + timedelta(days=1)
    test_end = month_start(following, 0)  # the first day after the last complete month
    test_start = month_start(test_end, months[1])
    validation_start = month_start(test_start, months[0])
    return TimeSplit(first_day, validation_start, test_start, test_end)


def to_pandas_features(df: pl.DataFrame, names: Sequence[str] = FEATURE_NAMES) -> pd.DataFrame:
    """The model's input frame: feature columns in a fixed order, categoricals as strings."""
    categorical, numeric = split_columns(names)
    out = df.select(
        *[pl.col(c).cast(pl.String).fill_null("__missing__") for c in categorical],
        *[pl.col(c).cast(pl.Float64) for c in numeric],
    ).to_pandas()
    return out[list(names)]


def logistic_pipeline(C: float = 1.0, solver: str = "lbfgs", names: Sequence[str] = FEATURE_NAMES) -> Pipeline:
    """One-hot categoricals, imputed and scaled numerics, logistic regression. ``solver`` is part of
    a model's recorded parameters (lbfgs when a record has none), so `make reproduce` refits what
    was registered."""
    categorical, numeric = split_columns(names)
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=50), list(categorical)),
            (
                "num",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]
                ),
                list(numeric),
            ),
        ]
    )
    return Pipeline([("pre", pre), ("model", LogisticRegression(C=C, solver=solver, max_iter=2000))])


def boosted_pipeline(
    learning_rate: float = 0.05,
    max_leaf_nodes: int = 15,
    min_samples_leaf: int = 200,
    l2_regularization: float = 1.0,
    max_iter: int = 300,
    names: Sequence[str] = FEATURE_NAMES,
) -> Pipeline:
    categorical, _ = split_columns(names)
    pre = ColumnTransformer(
        [
            (
                "cat",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
                list(categorical),
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        learning_rate=learning_rate,
        max_leaf_nodes=max_leaf_nodes,
        min_samples_leaf=min_samples_leaf,
        l2_regularization=l2_regularization,
        max_iter=max_iter,
        categorical_features=list(range(len(categorical))),
        early_stopping=False,
        random_state=0,
    )
    return Pipeline([("pre", pre), ("model", model)])


class MeanOfProbabilities:
    """The blend: the mean of fitted members' probabilities, what a soft VotingClassifier
    computes, built from members that are already fitted. Training fits the boosted trees and the
    logistic model as candidates anyway; the blend reuses them instead of fitting both again
    (21 s of a 50 s training on the year, measured), with identical predictions."""

    def __init__(self, members: list):
        self.members = members
        self.classes_ = np.array([0, 1])

    def predict_proba(self, x) -> np.ndarray:
        return np.mean([m.predict_proba(x) for m in self.members], axis=0)


class _Blend:
    """``fit`` for the blend family when its members are not at hand (the backtest)."""

    def __init__(self, C: float = 1.0, solver: str = "lbfgs", names: Sequence[str] = FEATURE_NAMES, **boosted):
        self.C, self.solver, self.names, self.boosted = C, solver, names, boosted

    def fit(self, x, y) -> MeanOfProbabilities:
        return MeanOfProbabilities(
            [
                boosted_pipeline(**self.boosted, names=self.names).fit(x, y),
                logistic_pipeline(self.C, self.solver, self.names).fit(x, y),
            ]
        )


def blend_pipeline(C: float = 1.0, solver: str = "lbfgs", names: Sequence[str] = FEATURE_NAMES, **boosted) -> _Blend:
    """The mean of the boosted trees' and the logistic model's probabilities (soft voting): the two
    err differently, and the mean gained 0.006 of validation ROC AUC over either alone."""
    return _Blend(C, solver, names, **boosted)


LOGISTIC_PARAMS = ("C", "solver")


def blend_members(params: dict) -> tuple[tuple[str, dict], tuple[str, dict]]:
    boosted = {k: v for k, v in params.items() if k not in LOGISTIC_PARAMS}
    logistic = {"C": params.get("C", 1.0), **({"solver": params["solver"]} if "solver" in params else {})}
    return ("hist_gradient_boosting", boosted), ("logistic", logistic)


CANDIDATES: dict[str, list[dict]] = {
    # newton-cholesky instead of lbfgs: the same model to the 4th decimal (blend validation 0.7212
    # vs 0.7211, holdout 0.7513 and walk-forward Mar/Jun/Sep/Dec 0.7520 for both; blend probabilities
    # differ by at most 0.028, mean 0.0007, where lbfgs stopped short of the optimum) in 4 iterations
    # instead of 101: fit 4.4 s vs 7.2 s, in every training and each of the backtest's 11 months
    # (benchmarks/logistic_solver.py, 2026-12-02).
    "logistic": [{"C": 1.0, "solver": "newton-cholesky"}],
    # Small trees, large leaves: larger ones (63 leaves) fit January-August and lost ~0.02 of
    # validation ROC AUC on September-October. A 15-leaf variant (min_samples_leaf 200) was dropped
    # from the grid: on the year it scored 0.7140 vs 0.7163 validation ROC AUC for 31 leaves, never
    # won, and is not a blend member, yet cost 6-8 s of every training (measured 2026-11-22).
    # 100 trees at learning rate 0.15 instead of 300 at 0.05: as good (blend validation 0.7229 vs
    # 0.7223, holdout 0.7511 vs 0.7509, walk-forward Mar/Jun/Sep/Dec 0.7530 vs 0.7543), half the
    # fit (11.4 s vs 22.5 s) and 1.95x the predict throughput (118k vs 60k rows/s on Nov-Dec, side
    # by side); 75 trees at 0.2 lost 0.0004-0.002 everywhere (benchmarks/model_trees.py, 2026-12-02).
    "hist_gradient_boosting": [{"learning_rate": 0.15, "max_leaf_nodes": 31, "min_samples_leaf": 100, "max_iter": 100}],
    "blend": [
        {
            "C": 1.0,
            "solver": "newton-cholesky",
            "learning_rate": 0.15,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 100,
            "max_iter": 100,
        }
    ],
}
BUILDERS = {"logistic": logistic_pipeline, "hist_gradient_boosting": boosted_pipeline, "blend": blend_pipeline}


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            rows.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "n": int(mask.sum()),
                    "mean_predicted": float(p[mask].mean()),
                    "observed_rate": float(y[mask].mean()),
                }
            )
    return rows


def evaluate(y: np.ndarray, p: np.ndarray) -> dict:
    fpr, tpr, _ = roc_curve(y, p)
    grid = np.linspace(0, 1, 21)
    calib = calibration_table(y, p)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "late_rate": float(y.mean()),
        "rows": int(len(y)),
        # expected calibration error: mean |observed - predicted| weighted by bin size
        "calibration_error": float(sum(r["n"] * abs(r["observed_rate"] - r["mean_predicted"]) for r in calib) / len(y)),
        "roc_curve": [{"fpr": float(f), "tpr": float(np.interp(f, fpr, tpr))} for f in grid],
        "calibration": calib,
    }


@dataclass
class TrainingResult:
    family: str
    params: dict
    pipeline: Pipeline
    validation: dict
    test: dict
    tried: list[dict] = field(default_factory=list)
    rows: dict = field(default_factory=dict)
    train_sample: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    test_labels: np.ndarray | None = None
    test_predictions: np.ndarray | None = None


# The training sample. A train window larger than this is fitted on a reproducible sample of it:
# the rows sorted by flight_id (so the sample does not depend on the order files were read in),
# then ``DataFrame.sample(n=TRAIN_SAMPLE_ROWS, seed=TRAIN_SAMPLE_SEED)``. ``fit`` applies it, so
# training, the backtest and ``make reproduce`` draw the same rows from the same window; the
# record keeps ``train_sample`` (rows, available, seed, max_rows).
#
# Learning curve on the year (train Jan-Aug = 224,910 flights, validation Sep-Oct = 56,463,
# test Nov-Dec = 55,403; measured 2026-11-22, 2 shared cores, load 1.3-3):
#     rows     logistic  hgb(31 leaves)  blend val   blend test   fit logistic + hgb
#     25k      0.7030    see report      -           -            ~3-5 s
#     100k     0.7098    0.7157          0.7228      0.7533       5.1 + 5.0 s
#     150k     0.7105    0.7153          0.7228      0.7541       7.9 + (noisy) s
#     all 225k 0.7100    0.7163          0.7236      0.7544       10.1 + 10.4 s
# (an earlier run: blend 25k 0.7124, 50k 0.7172, 100k 0.7211, all 0.7246). Beyond 100k the blend
# gains <= 0.001 of validation ROC AUC for twice the fit time, and the test AUC stays within
# 0.0011 of the all-rows model; at 100x the data a fit stays 100k rows (~40 MB of features)
# instead of 22 M rows.
TRAIN_SAMPLE_ROWS = 100_000
TRAIN_SAMPLE_SEED = 0


def training_sample(
    data: pl.DataFrame, max_rows: int | None = TRAIN_SAMPLE_ROWS, seed: int = TRAIN_SAMPLE_SEED
) -> pl.DataFrame:
    """The rows a model learns from: all of ``data`` up to ``max_rows``, else the documented
    reproducible sample (see TRAIN_SAMPLE_ROWS)."""
    if max_rows is None or data.height <= max_rows:
        return data
    return data.sort("flight_id").sample(n=max_rows, seed=seed)


def sample_record(available: int, max_rows: int | None = TRAIN_SAMPLE_ROWS, seed: int = TRAIN_SAMPLE_SEED) -> dict:
    return {
        "rows": available if max_rows is None else min(available, max_rows),
        "available": available,
        "seed": seed,
        "max_rows": max_rows,
    }


def fit(
    family: str,
    params: dict,
    data: pl.DataFrame,
    max_rows: int | None = TRAIN_SAMPLE_ROWS,
    seed: int = TRAIN_SAMPLE_SEED,
    names: Sequence[str] = FEATURE_NAMES,
) -> Pipeline | VotingClassifier:
    """The one way a model is fitted (training, backtest, reproduce): ``data`` holds features and
    ``is_late``; more than ``max_rows`` rows are sampled (``training_sample``); ``names`` are the
    horizon's features."""
    data = training_sample(data, max_rows, seed)
    return BUILDERS[family](**params, names=names).fit(to_pandas_features(data, names), data["is_late"].to_numpy())


def predict_chunks(models: dict[str, object], chunks: Iterable[pl.DataFrame]) -> tuple[np.ndarray, dict, dict]:
    """Labels and each model's P(late) over ``chunks`` (features plus ``is_late``), read one at a
    time so a window is never held whole; also each model's predict seconds."""
    ys: list[np.ndarray] = []
    ps: dict[str, list[np.ndarray]] = {k: [] for k in models}
    seconds = dict.fromkeys(models, 0.0)
    for chunk in chunks:
        ys.append(chunk["is_late"].to_numpy())
        for key, model in models.items():
            t = time.perf_counter()
            ps[key].append(predict(model, chunk))
            seconds[key] += time.perf_counter() - t
    if not ys:
        return np.empty(0), {k: np.empty(0) for k in models}, seconds
    return np.concatenate(ys), {k: np.concatenate(v) for k, v in ps.items()}, seconds


def train_and_select(
    train: pl.DataFrame,
    train_available: int,
    validation: Callable[[], Iterable[pl.DataFrame]],
    test: Callable[[], Iterable[pl.DataFrame]],
    names: Sequence[str] = FEATURE_NAMES,
) -> TrainingResult:
    """``train``: the training sample (features plus ``is_late``; ``train_available`` rows in the
    window); ``validation`` and ``test`` give their windows' chunks. Every candidate is fitted on
    train and compared on validation; only the winner is scored on test, once."""
    if train.height == 0:
        raise ValueError("the train window holds no labelled flights")
    fitted: dict[str, object] = {}  # the candidates' fitted pipelines, which the blend reuses
    fit_seconds: dict[str, float] = {}
    reused: dict[str, list[str]] = {}
    for family, grid in CANDIDATES.items():
        for params in grid:
            key = json.dumps([family, params], sort_keys=True)
            members = (
                [json.dumps([f, p], sort_keys=True) for f, p in blend_members(params)] if family == "blend" else []
            )
            started = time.perf_counter()
            if members and all(m in fitted for m in members):
                fitted[key], reused[key] = MeanOfProbabilities([fitted[m] for m in members]), members
            else:
                fitted[key] = fit(family, params, train, names=names)
            fit_seconds[key] = time.perf_counter() - started
    # The blend's validation probabilities are the mean of its members' (what
    # MeanOfProbabilities.predict_proba computes), so members are not predicted twice.
    y_val, p_val, predict_s = predict_chunks({k: m for k, m in fitted.items() if k not in reused}, validation())
    if len(y_val) == 0:
        raise ValueError("the validation window holds no labelled flights")
    for key, members in reused.items():
        p_val[key], predict_s[key] = np.mean([p_val[m] for m in members], axis=0), 0.0
    tried, best = [], None
    for key in fitted:
        family, params = json.loads(key)
        auc = float(roc_auc_score(y_val, p_val[key]))
        tried.append(
            {
                "family": family,
                "params": params,
                "validation_roc_auc": round(auc, 4),
                "fit_seconds": round(fit_seconds[key], 2),
                "validate_seconds": round(predict_s[key], 2),
            }
        )
        if best is None or auc > best[0]:
            best = (auc, key)
    assert best is not None
    family, params = json.loads(best[1])
    pipe = fitted[best[1]]
    y_test, p_test, _ = predict_chunks({"best": pipe}, test())
    if len(y_test) == 0:
        raise ValueError("the test window holds no labelled flights")
    return TrainingResult(
        family=family,
        params=params,
        pipeline=pipe,
        validation=evaluate(y_val, p_val[best[1]]),
        test=evaluate(y_test, p_test["best"]),
        tried=tried,
        rows={"train": train_available, "validation": int(len(y_val)), "test": int(len(y_test))},
        train_sample=sample_record(train_available),
        test_labels=y_test,
        test_predictions=p_test["best"],
    )


# Rows per predict_proba call. The model's intermediate matrices are several times the features:
# the logistic member's dense one-hot design is ~170 float64 columns (1.4 kB a row), so one call on
# a month at SF=100 (2.8 M flights) held ~4 GB for it alone, and training peaked at 16.9 GB
# (measured 2026-12-02). Each row's probability depends only on that row, so slices give the
# probabilities of one call up to rounding (the logistic member's matrix product sums a batch of
# another size in another order: <= 1e-15); at 250k rows the per-call overhead is under 1 %.
PREDICT_ROWS = 250_000
# Below this, encoding distinct combinations saves less than its own polars calls cost (a served
# request of one flight: ~25 ms the ordinary way, more through fast_predict).
FAST_PREDICT_MIN_ROWS = 1_000


def predict(pipeline: Pipeline | VotingClassifier, features: pl.DataFrame) -> np.ndarray:
    """P(late) per row: ``pipeline.predict_proba`` bit for bit on up to PREDICT_ROWS rows (larger
    frames in slices, equal up to rounding), with each categorical combination encoded once
    (resources/ml/model/fast_predict.py); other model shapes and small frames go the ordinary way."""
    if features.height == 0:
        return np.empty(0)
    if features.height > PREDICT_ROWS:
        return np.concatenate(
            [predict(pipeline, features.slice(i, PREDICT_ROWS)) for i in range(0, features.height, PREDICT_ROWS)]
        )
    if features.height < FAST_PREDICT_MIN_ROWS:
        return predict_ordinary(pipeline, features)
    categorical, numeric = split_columns(input_columns(pipeline))
    proba = fast_predict.predict_proba(
        pipeline, fast_predict.model_frame(features, categorical, numeric), set(categorical)
    )
    return predict_ordinary(pipeline, features) if proba is None else proba[:, 1]


def predict_ordinary(pipeline, features: pl.DataFrame) -> np.ndarray:
    """The pipeline's own ``predict_proba`` on the pandas frame it was fitted on (the reference
    ``predict`` is compared with)."""
    if features.height == 0:
        return np.empty(0)
    return pipeline.predict_proba(to_pandas_features(features, input_columns(pipeline)))[:, 1]
