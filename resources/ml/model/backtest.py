"""Walk-forward backtest: the quality history a data scientist can trust.

For each month M from the second month of data on, a model is fitted with the production model's
family and parameters (the same feature table, the same ``fit`` as training) on every labelled day
strictly before M, then scores M. Every score is out of sample by construction; ``trained_through``
says up to which day the model that produced it had seen labels.

    ml.backtest_scores (warehouse DuckLake)    flight_id, flight_date, p_late, model_version,
                                               trained_through: every day of every backtest month
    ml.backtest_metrics (warehouse DuckLake)   one metrics row per month

A month's scores and its metrics row are replaced in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
import polars.selectors as cs

from resources.core.settings import Settings
from resources.ml.lake import BACKTEST_METRICS_TABLE as METRICS_TABLE
from resources.ml.lake import BACKTEST_SCORES_TABLE as SCORES_TABLE
from resources.ml.lake import ML_SCHEMA, write_lake_days
from resources.ml.model.training import TRAIN_SAMPLE_ROWS, evaluate, fit, predict

BACKTEST_SCORE_SCHEMA = {
    "flight_id": pl.String,
    "flight_date": pl.Date,
    "p_late": pl.Float64,
    "model_version": pl.String,
    "trained_through": pl.Date,
}


# Each month's model learns from at most this many earlier flights, sampled reproducibly. The
# learning curve on the year (train Jan-Aug, validation Sep-Oct, blend): 25k 0.7124, 50k 0.7172,
# 100k 0.7211, all 225k 0.7246 validation ROC AUC; fit 9 s at 100k vs 21 s at 225k. So a month's
# backtest AUC may read ~0.003 low from May on (when more than 100k earlier flights exist), and the
# year's backtest fits drop from ~11 x up to 25 s to at most 9 s each; at 100x data each fit stays
# 100k rows instead of growing to 30 M.
# The cap and seed are training's own (TRAIN_SAMPLE_ROWS, applied inside ``fit``), so a month's
# model learns from rows drawn exactly as the production model's were. Memory: the backtest holds
# the labelled feature table up to the last month (the year: 336,776 rows x 48 columns ~ 130 MB)
# plus one month's sample (100k rows, ~40 MB as pandas).
MAX_TRAIN_ROWS = TRAIN_SAMPLE_ROWS


@dataclass
class MonthResult:
    month: str
    pipeline: object
    scores: pl.DataFrame
    metrics: dict
    y: np.ndarray
    p: np.ndarray


def first_feature_day(settings: Settings) -> date | None:
    from resources.ml.lake import feature_days

    days = feature_days(settings)
    return days[0] if days else None


def backtest_month(
    window, first: date, start: date, end: date, family: str, params: dict, model_version: str
) -> MonthResult | None:
    """``window``: a LabelledWindow over the lakehouse. Fits on the labelled days [first, start)
    (their reproducible sample, read a week at a time), scores [start, end). None when there is
    nothing to learn from or to score."""
    train, available = window.sample((first, start), MAX_TRAIN_ROWS) if first < start else (pl.DataFrame(), 0)
    if train.height == 0 or train["is_late"].n_unique() < 2:
        return None
    pipeline = fit(family, params, train, max_rows=None)
    # Scored a chunk at a time, keeping only ids, labels and probabilities (a month of every
    # feature is 2.9 M rows at SF=100).
    scored = [
        chunk.select("flight_id", "flight_date", "is_late", pl.Series("p_late", predict(pipeline, chunk), pl.Float64))
        for chunk in window.chunks((start, end))
    ]
    if not scored:
        return None
    month = pl.concat(scored)
    p, y = month["p_late"].to_numpy(), month["is_late"].to_numpy()
    scores = (
        month.select("flight_id", "flight_date", "p_late")
        .with_columns(
            pl.lit(model_version).alias("model_version"), pl.lit(start - timedelta(days=1)).alias("trained_through")
        )
        .select(list(BACKTEST_SCORE_SCHEMA))
    )
    full = evaluate(y, p) if 0 < y.sum() < len(y) else {"rows": int(len(y)), "late_rate": float(y.mean())}
    metrics = {
        "month": f"{start:%Y-%m}",
        "model_version": model_version,
        "family": family,
        "train_start": train["flight_date"].min(),
        "trained_through": start - timedelta(days=1),
        "train_rows": train.height,
        "train_rows_available": available,
        "flights": month.height,
        "late_rate": full["late_rate"],
        **{k: full.get(k) for k in ("roc_auc", "pr_auc", "brier", "calibration_error", "log_loss")},
    }
    return MonthResult(f"{start:%Y-%m}", pipeline, scores, metrics, y, p)


@dataclass
class BacktestBasis:
    """Which model the backtest replays: the production model's family and parameters (the newest
    registered model before any promotion)."""

    source_version: str
    family: str
    params: dict


def backtest_basis(registry) -> BacktestBasis:
    version = registry.production_version() or (registry.versions() or [None])[-1]
    if version is None:
        raise ValueError("no model in the registry to backtest: materialize ml/model_candidate first")
    record = registry.record(version)
    return BacktestBasis(version, record["family"], record["params"])


def write_month(settings: Settings, result: MonthResult) -> None:
    """The month's scores (its days) and its metrics row, replaced in one lake transaction."""
    # A figure a month lacks (ROC AUC of a one-class month) is a null; typed as a number, so a table
    # created from such a month does not take the column as an integer and truncate later figures.
    metrics = pl.DataFrame([result.metrics]).with_columns(cs.by_dtype(pl.Null).cast(pl.Float64))

    def replace_metrics(con, days) -> None:
        con.register("_metrics", metrics.to_arrow())
        con.execute(f"create table if not exists {ML_SCHEMA}.{METRICS_TABLE} as select * from _metrics limit 0")
        con.execute(f"delete from {ML_SCHEMA}.{METRICS_TABLE} where month = ?", [result.month])
        con.execute(f"insert into {ML_SCHEMA}.{METRICS_TABLE} by name select * from _metrics")
        con.unregister("_metrics")

    days = {day: part for (day,), part in result.scores.partition_by("flight_date", as_dict=True).items()}
    write_lake_days(settings, SCORES_TABLE, days, before_replace=replace_metrics)


def record_backtest_model(registry, result: MonthResult, basis: BacktestBasis) -> None:
    """Keep the month's model in the registry with status 'backtest' (never promotable)."""
    m = {k: (str(v) if isinstance(v, date) else v) for k, v in result.metrics.items()}
    month_start = result.scores["flight_date"].min()
    registry.register_backtest(
        result.pipeline,
        {
            "model_version": m["model_version"],
            "family": basis.family,
            "params": basis.params,
            "replays": basis.source_version,
            "backtest": m,
            # The month it was judged on is this model's holdout.
            "test": {k: m.get(k) for k in ("roc_auc", "pr_auc", "brier", "log_loss", "calibration_error", "late_rate")},
            "split": {
                "train_start": m["train_start"],
                "validation_start": None,
                "test_start": str(month_start.replace(day=1)),
                "test_end": str(result.scores["flight_date"].max()),
            },
        },
    )
