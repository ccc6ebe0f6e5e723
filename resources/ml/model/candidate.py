"""Training a candidate end to end: read the labelled feature window, audit it for leakage,
train and select, register the winner with its monitoring reference and audit table."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from resources.core.parquet_io import write_parquet_atomic
from resources.core.settings import REPO_ROOT, Settings, git_revision
from resources.ml.features.availability import DAY_AHEAD
from resources.ml.features.catalog import FEATURES_BY_HORIZON
from resources.ml.features.leakage_audit import assert_audit_passes, leakage_audit
from resources.ml.features.point_in_time import LATE_MINUTES
from resources.ml.lake import ml_dir
from resources.ml.model.training import TimeSplit, TrainingResult, predict, train_and_select
from resources.ml.model.window import AUDIT_MAX_ROWS, LabelledWindow
from resources.ml.registry.storage import Registry, new_version
from resources.monitoring.drift import drift_profile

REFERENCE_ROWS = 5_000


def leakage_audit_path(settings: Settings) -> Path:
    return ml_dir(settings) / "leakage_audit.parquet"


def code_version() -> str:
    """The commit and a digest of the ML layer's code (every module under resources/ml/)."""
    sources = sorted((REPO_ROOT / "resources" / "ml").rglob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    return f"{git_revision()}+ml-{digest}"


@dataclass
class Candidate:
    record: dict
    result: TrainingResult
    audit: pl.DataFrame


def train_candidate(
    settings: Settings, split: TimeSplit, monitoring: dict, run_id: str, horizon: str = DAY_AHEAD
) -> Candidate:
    timings, t0 = {}, time.perf_counter()
    window = LabelledWindow(settings, split, horizon)  # read a week at a time (resources/ml/model/window.py)
    # The audit judges the training window only: the test window stays unseen until the end.
    train_rows, available = window.sample("train", AUDIT_MAX_ROWS)
    timings["read_seconds"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    audit = leakage_audit(train_rows, FEATURES_BY_HORIZON[horizon])
    write_parquet_atomic(audit, leakage_audit_path(settings))
    assert_audit_passes(audit)  # fails the build before anything is trained or registered
    timings["audit_seconds"] = round(time.perf_counter() - t0, 2)
    started = time.perf_counter()
    # train_rows is the whole train window when it fits the audit bound (the year: 225k rows), and
    # fit() draws the training sample from it; only a larger window is sampled by reading it again.
    sample = train_rows if available <= AUDIT_MAX_ROWS else window.sample("train")[0]
    result = train_and_select(
        sample,
        available,
        lambda: window.chunks("validation"),
        lambda: window.chunks("test"),
        names=[f.name for f in FEATURES_BY_HORIZON[horizon]],
    )
    timings["train_and_select_seconds"] = round(time.perf_counter() - started, 2)
    t0 = time.perf_counter()
    # Monitoring compares production traffic with this: training rows and the model's own scores,
    # and judges drift against thresholds from the training window's own month-to-month variation.
    train = train_rows.with_columns(pl.Series("p_late", predict(result.pipeline, train_rows)))
    monitoring = {**monitoring, "drift_profile": drift_profile(train)}
    reference = train.sample(min(REFERENCE_ROWS, train.height), seed=0).sort("flight_id")
    timings["monitoring_reference_seconds"] = round(time.perf_counter() - t0, 2)
    data_version = window.data_version()
    record = Registry(settings).register(
        result.pipeline,
        {
            "model_version": new_version(),
            "family": result.family,
            "params": result.params,
            "horizon": horizon,
            "features": [f.name for f in FEATURES_BY_HORIZON[horizon]],
            "label": f"arr_delay >= {LATE_MINUTES} or cancelled or diverted",
            "split": {k: str(v) for k, v in vars(split).items()},
            "rows": result.rows,
            # which training rows the model learnt from: rebuild it with fit(..., max_rows, seed)
            "train_sample": result.train_sample,
            "validation": result.validation,
            "test": result.test,
            "tried": result.tried,
            "data_version": data_version,
            "code_version": code_version(),
            "dagster_run_id": run_id,
            "training_seconds": round(time.perf_counter() - started, 1),
            "timings": timings,
            "monitoring": monitoring,
        },
        reference=reference,
    )
    return Candidate(record, result, audit)
