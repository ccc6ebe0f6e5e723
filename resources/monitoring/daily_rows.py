"""A cheap metrics row per scored day (no HTML, numpy) in the warehouse lake's tables
``monitoring.daily_drift`` and ``monitoring.daily_quality`` (joined as ``monitoring.daily_metrics``
in the catalog), labelled with its sample."""

from __future__ import annotations

from datetime import date

import polars as pl

from resources.core.settings import Settings
from resources.ml.lake import read_lake_days, write_lake_days
from resources.monitoring.auc import daily_auc
from resources.monitoring.drift import PREDICTION, DriftVerdict
from resources.monitoring.paths import MONITORING_SCHEMA
from resources.monitoring.samples import IN_SAMPLE, OUT_OF_SAMPLE


def write_daily_rows(settings: Settings, kind: str, rows: pl.DataFrame) -> dict[date, int]:
    """Replace the days (``metric_date``) of ``rows`` in ``monitoring.<kind>``, in one
    transaction: a new day writes only its own rows, a monthly run rewrites its days."""
    days = {day: part for (day,), part in rows.partition_by("metric_date", as_dict=True).items()}
    write_lake_days(settings, kind, days, schema=MONITORING_SCHEMA, day_column="metric_date")
    return {day: part.height for day, part in days.items()}


def read_daily_rows(settings: Settings, kind: str) -> pl.DataFrame:
    """Every row of ``monitoring.<kind>`` by day; empty (no columns) before the first."""
    return read_lake_days(
        settings, kind, schema=MONITORING_SCHEMA, day_column="metric_date", order_by="metric_date, model_version"
    )


def daily_drift_rows(
    current: pl.DataFrame, verdict: DriftVerdict | None, model_version: str, oos_from: date
) -> pl.DataFrame:
    """One row per scored day: flights, mean p_late, and (when the month has a reference) the
    share of judged features past their *daily* threshold and p_late's PSI."""
    base = (
        current.group_by("flight_date")
        .agg(pl.len().alias("flights_scored"), pl.col(PREDICTION).mean().alias("prediction_mean"))
        .sort("flight_date")
    )
    if verdict is not None:
        base = base.join(verdict.daily, on="flight_date", how="left")
    else:
        base = base.with_columns(
            pl.lit(None, pl.Float64).alias("drift_share"),
            pl.lit(None, pl.Int64).alias("drifted_features"),
            pl.lit(None, pl.Float64).alias("prediction_drift"),
            pl.lit(None, pl.Boolean).alias("prediction_drifted"),
        )
    return base.select(
        pl.col("flight_date").alias("metric_date"),
        pl.lit(model_version).alias("model_version"),
        pl.col("flights_scored").cast(pl.Int64),
        "drift_share",
        pl.col("drifted_features").cast(pl.Int64),
        "prediction_mean",
        "prediction_drift",
        "prediction_drifted",
        pl.when(pl.col("flight_date") >= oos_from)
        .then(pl.lit(OUT_OF_SAMPLE))
        .otherwise(pl.lit(IN_SAMPLE))
        .alias("sample"),
    )


def daily_quality_rows(current: pl.DataFrame, model_version: str, oos_from: date) -> pl.DataFrame:
    return daily_auc(current).select(
        pl.col("flight_date").alias("metric_date"),
        pl.lit(model_version).alias("model_version"),
        pl.col("labelled_flights").cast(pl.Int64),
        "roc_auc",
        "late_rate",
        pl.when(pl.col("flight_date") >= oos_from)
        .then(pl.lit(OUT_OF_SAMPLE))
        .otherwise(pl.lit(IN_SAMPLE))
        .alias("sample"),
    )
