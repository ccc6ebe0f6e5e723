"""ROC AUC in polars, vectorised per group: the daily quality rows, a month's headline and the
walk-forward backtest's figure of the month."""

from __future__ import annotations

import polars as pl

from resources.monitoring.actuals import TARGET
from resources.monitoring.drift import PREDICTION


def daily_auc(frame: pl.DataFrame, by: str = "flight_date") -> pl.DataFrame:
    """ROC AUC per group, vectorised (Mann-Whitney: mean rank of the late flights). Null where a
    group has only one class."""
    ranked = frame.with_columns(pl.col(PREDICTION).rank("average").over(by).alias("_rank"))
    out = (
        ranked.group_by(by)
        .agg(
            pl.len().alias("labelled_flights"),
            pl.col(TARGET).sum().alias("_pos"),
            pl.col("_rank").filter(pl.col(TARGET) == 1).sum().alias("_rank_pos"),
            pl.col(TARGET).cast(pl.Float64).mean().alias("late_rate"),
        )
        .with_columns((pl.col("labelled_flights") - pl.col("_pos")).alias("_neg"))
    )
    auc = (pl.col("_rank_pos") - pl.col("_pos") * (pl.col("_pos") + 1) / 2) / (pl.col("_pos") * pl.col("_neg"))
    return (
        out.with_columns(
            pl.when((pl.col("_pos") > 0) & (pl.col("_neg") > 0)).then(auc).otherwise(None).alias("roc_auc")
        )
        .drop("_pos", "_neg", "_rank_pos")
        .sort(by)
    )


def auc(frame: pl.DataFrame) -> float | None:
    if frame.height == 0:
        return None
    value = daily_auc(frame.with_columns(pl.lit(0).alias("_all")), by="_all")["roc_auc"][0]
    return None if value is None else float(value)
