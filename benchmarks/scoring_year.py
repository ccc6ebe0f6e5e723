"""Scoring throughput on a year, end to end (read features, predict, validate, write scores): the
old path (one predict call per day) and ``score_days`` (one predict call per chunk of days), side
by side in one process, plus the check that both give the registered artifact's probabilities.

Runs on a temporary copy of the ML zone of an already built lakehouse (``make run`` first), so it
neither rewrites nor archives the real scores.

    .venv/bin/python benchmarks/scoring_year.py            # LAKEHOUSE_ROOT selects the lakehouse
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from resources.core.settings import Settings
from resources.ml.registry import Registry
from resources.ml.scoring import now_utc, score_days, score_frame, validate_scores, write_day
from resources.ml.store import day_file, features_dir, scores_dir

warnings.filterwarnings("ignore")


def per_day(settings: Settings, registry: Registry, days: list[date]) -> None:
    """The path before batching: one read, one predict call and one write per day."""
    version = registry.production_version()
    pipeline, scored_at = registry.load(version), now_utc()
    for day in days:
        features = pl.read_parquet(day_file(features_dir(settings), day))
        scores = score_frame(pipeline, features, version, scored_at)
        validate_scores(scores, features)
        write_day(settings, day, scores)


def main() -> None:
    source = Settings.from_env()
    if Registry(source).production_version() is None:
        raise SystemExit(f"no production model under {source.root}: run `make run` first")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lakehouse"
        root.mkdir()
        for f in source.root.iterdir():  # the environment marker and the like
            if f.is_file() and f.suffix != ".duckdb":
                shutil.copy2(f, root / f.name)
        shutil.copytree(source.root / "ml", root / "ml",
                        ignore=shutil.ignore_patterns("scores", "scores_archive", "backtest_scores"))
        settings = Settings(root=root, env=source.env)
        from resources.core.secrets_store import secrets_dir  # the registry key lives beside the root
        if secrets_dir(source).exists():
            shutil.copytree(secrets_dir(source), secrets_dir(settings))
        registry = Registry(settings)
        days = sorted(date.fromisoformat(p.parent.name.split("=", 1)[1])
                      for p in features_dir(settings).glob("flight_date=*/part.parquet"))
        flights = sum(pl.scan_parquet(day_file(features_dir(settings), d)).select(pl.len()).collect().item()
                      for d in days)

        started = time.perf_counter()
        per_day(settings, registry, days)
        old_s = time.perf_counter() - started
        old = pl.read_parquet(str(scores_dir(settings) / "*" / "part.parquet")).sort("flight_id")
        shutil.rmtree(scores_dir(settings))
        shutil.rmtree(root / "ml" / "scores_archive", ignore_errors=True)

        started = time.perf_counter()
        score_days(settings, registry, days)
        new_s = time.perf_counter() - started
        new = pl.read_parquet(str(scores_dir(settings) / "*" / "part.parquet")).sort("flight_id")

        # Equal to the registered artifact's predict_proba, computed afresh in one call.
        from resources.ml.store import read_days
        from resources.ml.training import predict
        features = read_days(features_dir(settings)).sort("flight_id")
        reference = predict(registry.load(registry.production_version()), features)
        diff_new = float(np.max(np.abs(new["p_late"].to_numpy() - reference))) if len(reference) else 0.0
        diff_old = float(np.max(np.abs(old["p_late"].to_numpy() - reference))) if len(reference) else 0.0

    load = os.getloadavg()[0]
    print(f"{len(days)} days, {flights:,} flights, load average {load:.2f}")
    print(f"per-day predict (old):   {old_s:6.1f} s  {flights / old_s:10,.0f} rows/s")
    print(f"score_days (batched):    {new_s:6.1f} s  {flights / new_s:10,.0f} rows/s")
    print(f"ratio batched / per-day: {old_s / new_s:6.2f}x")
    print(f"max |p - artifact predict_proba|: batched {diff_new:.2e}, per-day {diff_old:.2e}")


if __name__ == "__main__":
    main()
