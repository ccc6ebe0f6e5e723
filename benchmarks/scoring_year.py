"""Scoring throughput on a year, end to end (read features, predict, validate, write scores), side
by side in one process: one predict call per day, ``score_days`` as of 1a9b7a4 (a chunk of days
per call to the pipeline's own ``predict_proba``, files one by one), and ``score_days`` as it runs
(``predict`` through resources/ml/model/fast_predict.py, files read and written by several threads);
plus the check that every path gives the registered artifact's probabilities.

Runs on a temporary copy of the ML zone of an already built lakehouse (``make run`` first), so it
neither rewrites nor archives the real scores.

    .venv/bin/python benchmarks/scoring_year.py            # LAKEHOUSE_ROOT selects the lakehouse
    .venv/bin/python benchmarks/scoring_year.py --days 31  # the first 31 days only (a scale lakehouse)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from resources.core.duckdb_connect import copy_sqlite_catalog
from resources.core.settings import Settings
from resources.ml.lake import ML_SCHEMA, PARTITIONS_TABLE, SCORES_TABLE, feature_days, read_features
from resources.ml.model.scoring import now_utc, read_scores, score_days, score_frame, validate_scores, write_days
from resources.ml.registry.storage import Registry
from resources.warehouse.lock import open_warehouse, warehouse_lock

warnings.filterwarnings("ignore")


def per_day(settings: Settings, registry: Registry, days: list[date]) -> None:
    """The path before batching: one read, one predict call and one write per day."""
    version = registry.production_version()
    pipeline, scored_at = registry.load(version), now_utc()
    for day in days:
        features = read_features(settings, day, day + timedelta(days=1))
        scores = score_frame(pipeline, features, version, scored_at)
        validate_scores(scores, features)
        write_days(settings, {day: scores})


def batched_sequential(settings: Settings, registry: Registry, days: list[date]) -> None:
    """``score_days`` as of 1a9b7a4 (2026-12-02): a predict call per chunk of 31 days with the
    pipeline's own predict_proba, day files read and written one after the other."""
    from resources.ml.model.scoring import SCORE_CHUNK_DAYS
    from resources.ml.model.training import predict_ordinary

    version = registry.production_version()
    pipeline, scored_at = registry.load(version), now_utc()
    for i in range(0, len(days), SCORE_CHUNK_DAYS):
        chunk = days[i : i + SCORE_CHUNK_DAYS]
        frames = [read_features(settings, day, day + timedelta(days=1)) for day in chunk]
        features = pl.concat([f for f in frames if f.height], how="vertical_relaxed")
        p, offset = predict_ordinary(pipeline, features), 0
        for day, day_features in zip(chunk, frames):
            scores = score_frame(pipeline, day_features.head(0), version, scored_at)
            if day_features.height:
                scores = (
                    day_features.select("flight_id", "flight_date", "batch_id")
                    .with_columns(
                        pl.Series("p_late", p[offset : offset + day_features.height], dtype=pl.Float64),
                        pl.lit(version).alias("model_version"),
                        pl.lit(scored_at).cast(pl.Datetime("us", "UTC")).alias("scored_at"),
                    )
                    .select(scores.columns)
                )
                offset += day_features.height
            validate_scores(scores, day_features)
            write_days(settings, {day: scores})


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="scoring throughput, three paths side by side")
    parser.add_argument("--days", type=int, default=None, help="score only the first N days")
    args = parser.parse_args(argv)
    source = Settings.from_env()
    if Registry(source).production_version() is None:
        raise SystemExit(f"no production model under {source.root}: run `make run` first")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lakehouse"
        root.mkdir()
        for f in source.root.iterdir():  # the environment marker and the like
            if f.is_file() and f.suffix != ".duckdb":
                shutil.copy2(f, root / f.name)
        shutil.copytree(
            source.root / "ml", root / "ml", ignore=shutil.ignore_patterns("scores_archive", "backtest_scores")
        )
        settings = Settings(root=root, env=source.env)
        copy_sqlite_catalog(source.warehouse_catalog, settings.warehouse_catalog)  # the lake holds the features
        shutil.copytree(source.warehouse_data, settings.warehouse_data)
        from resources.core.secrets_store import secrets_dir  # the registry key lives beside the root

        if secrets_dir(source).exists():
            shutil.copytree(secrets_dir(source), secrets_dir(settings))
        registry = Registry(settings)
        days = feature_days(settings)[: args.days]
        flights = read_features(settings, days[0], days[-1] + timedelta(days=1), columns=["flight_id"]).height

        # 1. one predict call per day; 2. score_days as of 1a9b7a4 (a chunk of days per predict_proba
        # call, files read and written one by one); 3. score_days as it runs now.
        import resources.ml.model.scoring as scoring
        from resources.ml.model.training import predict, predict_ordinary

        def timed(label: str, run) -> tuple[float, pl.DataFrame]:
            with warehouse_lock(settings), open_warehouse(settings, read_only=False) as con:  # this copy's scores
                con.execute(f"drop table if exists {ML_SCHEMA}.{SCORES_TABLE}")
                con.execute(f"delete from {ML_SCHEMA}.{PARTITIONS_TABLE} where table_name = ?", [SCORES_TABLE])
            shutil.rmtree(root / "ml" / "scores_archive", ignore_errors=True)
            started = time.perf_counter()
            run()
            seconds = time.perf_counter() - started
            print(f"  {label}: {seconds:.1f} s", flush=True)
            return seconds, read_scores(settings).sort("flight_id")

        scoring.predict = predict_ordinary
        try:
            per_day_s, per_day_scores = timed("per-day, predict_proba", lambda: per_day(settings, registry, days))
        finally:
            scoring.predict = predict
        pandas_s, pandas_scores = timed(
            "score_days as of 1a9b7a4", lambda: batched_sequential(settings, registry, days)
        )
        fast_s, fast_scores = timed("score_days now", lambda: score_days(settings, registry, days))

        # Equal to the registered artifact's own predict_proba, computed afresh in one call.
        features = read_features(settings, days[0], days[-1] + timedelta(days=1)).sort("flight_id")
        pipeline = registry.load(registry.production_version())
        started = time.perf_counter()
        reference = predict_ordinary(pipeline, features)
        ordinary_predict_s = time.perf_counter() - started
        started = time.perf_counter()
        fast = predict(pipeline, features)
        fast_predict_s = time.perf_counter() - started
        diffs = {
            label: float(np.max(np.abs(frame["p_late"].to_numpy() - reference))) if len(reference) else 0.0
            for label, frame in (("per-day", per_day_scores), ("as of 1a9b7a4", pandas_scores), ("now", fast_scores))
        }
        diffs["predict alone"] = float(np.max(np.abs(fast - reference))) if len(reference) else 0.0

    load = os.getloadavg()[0]
    print(
        f"{len(days)} days, {flights:,} flights, load average {load:.2f}; end to end = read features, "
        "predict, validate, write scores"
    )
    for label, seconds in (
        ("per-day, predict_proba", per_day_s),
        ("score_days as of 1a9b7a4", pandas_s),
        ("score_days now", fast_s),
    ):
        print(f"{label:28s} {seconds:6.1f} s  {flights / seconds:10,.0f} rows/s")
    print(
        f"predict alone, one call:     predict_proba {flights / ordinary_predict_s:,.0f} rows/s, "
        f"fast_predict {flights / fast_predict_s:,.0f} rows/s ({ordinary_predict_s / fast_predict_s:.2f}x)"
    )
    print(f"ratio now / as of 1a9b7a4, end to end: {pandas_s / fast_s:.2f}x (/ per-day: {per_day_s / fast_s:.2f}x)")
    print("max |p - artifact predict_proba|: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))


if __name__ == "__main__":
    main()
