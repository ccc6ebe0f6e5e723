"""Machine learning assets: features -> candidate -> pre-production -> production -> daily scores."""

import hashlib
import subprocess
import time
from datetime import date

import dagster as dg
import polars as pl
from sklearn.metrics import roc_auc_score

from assets.common import SINGLE_RUN
from resources.lakehouse_resource import LakehouseResource
from resources.ml_features import (
    DATA_SCIENCE, FEATURES, LATE_MINUTES, assert_no_leakage, build_features,
)
from resources.ml_registry import CANDIDATE, PREPRODUCTION, Registry, new_version
from resources.ml_scoring import now_utc, score_frame, validate_scores, write_day
from resources.ml_store import (
    day_file, feature_definitions_path, features_dir, load_feature_inputs, load_labels, read_days,
)
from resources.ml_training import TimeSplit, predict, train_and_select
from resources.parquet_io import write_parquet_atomic
from resources.raw_zone import by_day, days_in
from resources.settings import REPO_ROOT

FEATURES_KEY = dg.AssetKey(["ml", "flight_features"])
CANDIDATE_KEY = dg.AssetKey(["ml", "model_candidate"])
PREPRODUCTION_KEY = dg.AssetKey(["ml", "model_preproduction"])
PRODUCTION_KEY = dg.AssetKey(["ml", "production_model"])
SCORES_KEY = dg.AssetKey(["ml", "flight_delay_scores"])
ML_KINDS = {"scikit-learn", "parquet"}
REFERENCE_ROWS = 5_000

FEATURE_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("flight_id", "string", "Flight key (curated.fct_flights)."),
    dg.TableColumn("flight_date", "date", "Scheduled date: the partition."),
    dg.TableColumn("batch_id", "string", "Raw batch the flight came from (lineage)."),
    *[dg.TableColumn(f.name, f.dtype, f"{f.description} Owner: {f.owner}.") for f in FEATURES],
])


def _code_version() -> str:
    sources = sorted((REPO_ROOT / "resources").glob("ml_*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except OSError:
        rev = ""
    return f"{rev or 'nogit'}+ml-{digest}"


def _md_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    head = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    return head + "".join(
        "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |\n" for r in rows
    )


def _roc_markdown(curve: list[dict]) -> str:
    """A text plot of the ROC curve: one bar per false-positive rate step."""
    lines = ["FPR   TPR", *[f"{p['fpr']:.2f}  {'#' * round(p['tpr'] * 40):<40} {p['tpr']:.2f}" for p in curve[::2]]]
    return "```\n" + "\n".join(lines) + "\n```"


class TrainingConfig(dg.Config):
    """Time windows ([start, next start)); the test window is judged once, after selection."""

    train_start: str = "2013-01-01"
    validation_start: str = "2013-09-01"
    test_start: str = "2013-11-01"
    test_end: str = "2014-01-01"
    # Monitoring thresholds travel with the model (registry entry): warn when the share of drifted
    # columns exceeds this, or when ROC AUC falls this far below the holdout AUC.
    drift_share_warn: float = 0.5
    auc_drop_warn: float = 0.05

    def split(self) -> TimeSplit:
        return TimeSplit(*(date.fromisoformat(d) for d in
                           (self.train_start, self.validation_start, self.test_start, self.test_end)))


class PromotionConfig(dg.Config):
    """Launch the promote_model job with these filled in: the approval is recorded in the audit."""

    approver: str = ""
    reason: str = ""
    action: str = "promote"  # or "rollback"
    model_version: str = ""  # default: the newest pre-production version


def build_ml_assets(daily: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=FEATURES_KEY, group_name="ml", kinds={"polars", "parquet"}, owners=[DATA_SCIENCE],
        partitions_def=daily, backfill_policy=SINGLE_RUN,
        deps=[dg.AssetKey(["curated", "fct_flights"]), dg.AssetKey(["staging", "stg_nycflights__weather"]),
              dg.AssetKey(["snapshots", "planes_snapshot"]), dg.AssetKey(["curated", "dim_dates"])],
        metadata={"dagster/column_schema": FEATURE_SCHEMA},
        check_specs=[dg.AssetCheckSpec("no_post_departure_leakage", asset=FEATURES_KEY, blocking=True,
                                       description="Features of a day must not change when that day's "
                                       "post-departure columns are blanked or altered.")],
        description="Point-in-time features for every scheduled flight, known before its day starts "
        "(schedule, calendar, aircraft, origin weather as perfect forecast, past late rates). The same "
        "table feeds training (with labels) and scoring (without).",
    )
    def flight_features(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings = lakehouse.settings()
        window = context.partition_time_window
        start, end = window.start.date(), window.end.date()
        inputs = load_feature_inputs(settings, start, end)
        checked = sorted({start, days_in(start, end)[-1]})
        for day in checked:  # fails the build before anything is written
            assert_no_leakage(inputs, day)
        features = build_features(inputs, start, end)
        for day, part in by_day(features, "flight_date", days_in(start, end)).items():
            write_parquet_atomic(part, day_file(features_dir(settings), day))
        write_parquet_atomic(
            pl.DataFrame([{"name": f.name, "description": f.description, "dtype": f.dtype, "kind": f.kind,
                           "owner": f.owner} for f in FEATURES]),
            feature_definitions_path(settings),
        )
        return dg.MaterializeResult(
            metadata={"dagster/row_count": features.height, "features": len(FEATURES),
                      "days": len(days_in(start, end)), "path": dg.MetadataValue.path(str(features_dir(settings)))},
            check_results=[dg.AssetCheckResult(check_name="no_post_departure_leakage", passed=True,
                                               metadata={"days_checked": ", ".join(map(str, checked))})],
        )

    @dg.asset(key=CANDIDATE_KEY, group_name="ml", kinds=ML_KINDS, owners=[DATA_SCIENCE], deps=[FEATURES_KEY],
              description="Trains a logistic baseline and gradient-boosted trees on the train window, picks "
              "the best on validation, judges it once on the test window, and registers it as a candidate.")
    def model_candidate(context: dg.AssetExecutionContext, config: TrainingConfig, lakehouse: LakehouseResource):
        settings = lakehouse.settings()
        split = config.split()
        features = read_days(features_dir(settings), split.train_start, split.test_end)
        if features.height == 0:
            raise ValueError(f"no features under {features_dir(settings)} for {split}: materialize ml/flight_features")
        data = features.join(load_labels(settings, split.train_start, split.test_end), on="flight_id", how="inner")
        started = time.perf_counter()
        result = train_and_select(data, split)
        version = new_version()
        # Monitoring compares production traffic with this: training rows and the model's own scores.
        reference = data.filter(pl.col("flight_date") < split.validation_start)
        reference = reference.sample(min(REFERENCE_ROWS, reference.height), seed=0).sort("flight_id")
        reference = reference.with_columns(pl.Series("p_late", predict(result.pipeline, reference)))
        record = Registry(settings).register(result.pipeline, {
            "model_version": version, "family": result.family, "params": result.params,
            "features": [f.name for f in FEATURES], "label": f"arr_delay >= {LATE_MINUTES} or cancelled or diverted",
            "split": {k: str(v) for k, v in vars(split).items()}, "rows": result.rows,
            "validation": result.validation, "test": result.test, "tried": result.tried,
            "data_version": hashlib.sha256(data.hash_rows().to_numpy().tobytes()).hexdigest()[:16],
            "code_version": _code_version(), "dagster_run_id": context.run_id,
            "training_seconds": round(time.perf_counter() - started, 1),
            "monitoring": {"drift_share_warn": config.drift_share_warn, "auc_drop_warn": config.auc_drop_warn},
        }, reference=reference)
        t = result.test
        return dg.MaterializeResult(metadata={
            "model_version": version, "family": result.family, "params": result.params,
            "test_roc_auc": t["roc_auc"], "test_pr_auc": t["pr_auc"], "test_log_loss": t["log_loss"],
            "test_brier": t["brier"], "test_calibration_error": t["calibration_error"],
            "validation_roc_auc": result.validation["roc_auc"], "rows": result.rows,
            "candidates_tried": dg.MetadataValue.md(_md_table(result.tried)),
            "roc_curve_test": dg.MetadataValue.md(_roc_markdown(t["roc_curve"])),
            "calibration_test": dg.MetadataValue.md(_md_table(t["calibration"])),
            "artifact_sha256": record["artifact_sha256"], "data_version": record["data_version"],
            "code_version": record["code_version"],
        })

    @dg.asset(key=PREPRODUCTION_KEY, group_name="ml", kinds=ML_KINDS, owners=[DATA_SCIENCE],
              deps=[CANDIDATE_KEY, FEATURES_KEY],
              description="Proves the newest candidate scores a sample of operational data (the latest "
              "feature day, no labels) with the production scores schema; passes it to pre-production.")
    def model_preproduction(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings = lakehouse.settings()
        registry = Registry(settings)
        version = registry.latest(CANDIDATE)
        if version is None:
            raise ValueError("no candidate model in the registry: materialize ml/model_candidate")
        days = sorted(features_dir(settings).glob("flight_date=*/part.parquet"))
        sample = pl.read_parquet(days[-1])
        try:
            scores = score_frame(registry.load(version), sample, version, now_utc())
            validate_scores(scores, sample)
        except Exception as exc:
            registry.record_preproduction(version, False, {"error": str(exc)})
            raise
        details = {"sample_day": days[-1].parent.name, "rows": sample.height,
                   "p_late_mean": round(float(scores["p_late"].mean()), 4)}
        registry.record_preproduction(version, True, details)
        return dg.MaterializeResult(metadata={"model_version": version, "status": PREPRODUCTION, **details})

    @dg.asset(key=PRODUCTION_KEY, group_name="ml", kinds=ML_KINDS, owners=[DATA_SCIENCE], deps=[PREPRODUCTION_KEY],
              description="The production model. Changes only through the promote_model job with an approver "
              "and a reason, when the new version beats production on the same test window (or a rollback).")
    def production_model(context: dg.AssetExecutionContext, config: PromotionConfig, lakehouse: LakehouseResource):
        settings = lakehouse.settings()
        registry = Registry(settings)
        if config.action == "rollback":
            event = registry.rollback(config.approver, config.reason)
        elif config.action == "promote":
            version = config.model_version or registry.latest(PREPRODUCTION) or ""
            record = registry.record(version) if version else {"test": {"roc_auc": float("nan")}}
            current = registry.production_version()
            production_auc = None
            if current and version:
                split = {k: date.fromisoformat(v) for k, v in record["split"].items()}
                window = read_days(features_dir(settings), split["test_start"], split["test_end"])
                window = window.join(load_labels(settings, split["test_start"], split["test_end"]), on="flight_id")
                production_auc = float(roc_auc_score(window["is_late"].to_numpy(),
                                                     predict(registry.load(current), window)))
            event = registry.promote(version, config.approver, config.reason, record["test"]["roc_auc"], production_auc)
        else:
            raise ValueError(f"action must be 'promote' or 'rollback', got {config.action!r}")
        return dg.MaterializeResult(metadata={
            "model_version": event["version"], "previous_version": str(event.get("previous_version")),
            "approver": event["actor"], "reason": event["reason"], "at": event["at"],
            **{k: v for k, v in (event.get("metrics") or {}).items() if v is not None},
        })

    @dg.asset(key=SCORES_KEY, group_name="ml", kinds=ML_KINDS, owners=[DATA_SCIENCE],
              partitions_def=daily, backfill_policy=SINGLE_RUN, deps=[FEATURES_KEY, PRODUCTION_KEY],
              description="Every flight scheduled that day scored once by the production model: flight_id, "
              "flight_date, p_late, model_version, scored_at, batch_id. Re-scoring replaces a day atomically "
              "and archives the replaced version.")
    def flight_delay_scores(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings = lakehouse.settings()
        registry = Registry(settings)
        version = registry.production_version()
        if version is None:
            raise ValueError("no production model: train one and launch the promote_model job with an approval")
        pipeline = registry.load(version)
        window = context.partition_time_window
        start, end = window.start.date(), window.end.date()
        started, scored_at, archived, rows = time.perf_counter(), now_utc(), 0, 0
        for day in days_in(start, end):
            path = day_file(features_dir(settings), day)
            day_features = pl.read_parquet(path) if path.exists() else pl.DataFrame()
            if day_features.height == 0:
                raise ValueError(f"no features for {day}: materialize ml/flight_features for that partition first")
            scores = score_frame(pipeline, day_features, version, scored_at)
            validate_scores(scores, day_features)
            archived += write_day(settings, day, scores) is not None
            rows += scores.height
        seconds = time.perf_counter() - started
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows, "model_version": version, "days": len(days_in(start, end)),
            "replaced_days_archived": archived, "seconds": round(seconds, 2),
            "rows_per_second": round(rows / seconds) if seconds else None,
        })

    return [flight_features, model_candidate, model_preproduction, production_model, flight_delay_scores]

