"""Machine learning assets: features -> candidate -> pre-production -> production -> daily scores."""

import json
import time
from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field
from sklearn.metrics import roc_auc_score

from assets.automation import downstream
from assets.common import SINGLE_RUN, WAREHOUSE_POOL, frame_table, per_partition, table_schema
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.candidate import train_candidate
from resources.ml.features import DATA_SCIENCE, FEATURES, assert_no_leakage, build_features
from resources.ml.plots import curves_png, md_image
from resources.ml.registry import CANDIDATE, PREPRODUCTION, Registry
from resources.ml.scoring import SCORE_SCHEMA, now_utc, score_days, score_frame, validate_scores
from resources.ml.store import (
    day_file, feature_definitions_path, features_dir, load_feature_inputs, load_labels, read_days,
)
from resources.ml.training import TimeSplit, predict
from resources.core.parquet_io import write_parquet_atomic
from resources.raw.zone import by_day, days_in

FEATURES_KEY = dg.AssetKey(["ml", "flight_features"])
CANDIDATE_KEY = dg.AssetKey(["ml", "model_candidate"])
PREPRODUCTION_KEY = dg.AssetKey(["ml", "model_preproduction"])
PRODUCTION_KEY = dg.AssetKey(["ml", "production_model"])
SCORES_KEY = dg.AssetKey(["ml", "flight_delay_scores"])
ML_KINDS = {"scikit-learn", "parquet"}

FEATURE_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("flight_id", "string", "Flight key (curated.fct_flights)."),
    dg.TableColumn("flight_date", "date", "Scheduled date: the partition."),
    dg.TableColumn("batch_id", "string", "Raw batch the flight came from (lineage)."),
    *[dg.TableColumn(f.name, f.dtype, f"{f.description} Owner: {f.owner}.") for f in FEATURES],
])


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
    """Launch the promote_model job with these filled in: the approval is recorded in the audit.
    Approver and reason are required, so the launchpad refuses a run without them before it is
    queued; blank text is refused (and audited) inside."""

    approver: str = Field(description="Who approves: recorded verbatim in ml.model_audit.")
    reason: str = Field(description="Why: recorded verbatim in ml.model_audit.")
    action: str = Field(default="promote", description="'promote' or 'rollback'.")
    model_version: str = ""  # default: the newest pre-production version


def build_ml_assets(daily: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=FEATURES_KEY, group_name="ml", kinds={"polars", "parquet"}, owners=[DATA_SCIENCE],
        partitions_def=daily, backfill_policy=SINGLE_RUN, automation_condition=downstream(), pool=WAREHOUSE_POOL,
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
        rows = {}
        for day, part in by_day(features, "flight_date", days_in(start, end)).items():
            write_parquet_atomic(part, day_file(features_dir(settings), day))
            rows[day.isoformat()] = {"dagster/row_count": part.height}
        write_parquet_atomic(
            pl.DataFrame([{"name": f.name, "description": f.description, "dtype": f.dtype, "kind": f.kind,
                           "owner": f.owner} for f in FEATURES]),
            feature_definitions_path(settings),
        )
        yield dg.MaterializeResult(
            metadata={"dagster/row_count": features.height, "features": len(FEATURES),
                      "days": len(days_in(start, end)), "path": dg.MetadataValue.path(str(features_dir(settings)))},
            check_results=[dg.AssetCheckResult(check_name="no_post_departure_leakage", passed=True,
                                               metadata={"days_checked": ", ".join(map(str, checked))})],
        )
        yield from per_partition(FEATURES_KEY, rows)

    @dg.asset(key=CANDIDATE_KEY, group_name="ml", kinds=ML_KINDS, owners=[DATA_SCIENCE], deps=[FEATURES_KEY],
              description="Trains a logistic baseline and gradient-boosted trees on the train window, picks "
              "the best on validation, judges it once on the test window, and registers it as a candidate.")
    def model_candidate(context: dg.AssetExecutionContext, config: TrainingConfig, lakehouse: LakehouseResource):
        monitoring = {"drift_share_warn": config.drift_share_warn, "auc_drop_warn": config.auc_drop_warn}
        candidate = train_candidate(lakehouse.settings(), config.split(), monitoring, context.run_id)
        record, result, t = candidate.record, candidate.result, candidate.result.test
        png = curves_png(result.test_labels, result.test_predictions,
                         f"{record['model_version']}: test window {record['split']['test_start']} .. "
                         f"{record['split']['test_end']} (out of sample)")
        return dg.MaterializeResult(metadata={
            "model_version": record["model_version"], "family": result.family, "params": result.params,
            "test_roc_auc": t["roc_auc"], "test_pr_auc": t["pr_auc"], "test_log_loss": t["log_loss"],
            "test_brier": t["brier"], "test_calibration_error": t["calibration_error"],
            "validation_roc_auc": result.validation["roc_auc"], "rows": result.rows,
            "candidates_tried": frame_table(pl.DataFrame(
                [{**r, "params": json.dumps(r["params"], sort_keys=True)} for r in result.tried])),
            "curves_test": dg.MetadataValue.md(md_image(png, "ROC, precision-recall and calibration on the test window")),
            "calibration_test": frame_table(pl.DataFrame(t["calibration"])),
            "leakage_audit": frame_table(candidate.audit),
            "artifact_sha256": record["artifact_sha256"], "data_version": record["data_version"],
            "code_version": record["code_version"],
        })

    @dg.asset(key=PREPRODUCTION_KEY, group_name="ml", kinds=ML_KINDS, owners=[DATA_SCIENCE],
              deps=[CANDIDATE_KEY, FEATURES_KEY],
              # A new candidate is proven at once; a new feature day alone changes nothing here.
              automation_condition=downstream().ignore(dg.AssetSelection.assets(FEATURES_KEY)),
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
              automation_condition=downstream(),
              metadata={"dagster/column_schema": table_schema(SCORE_SCHEMA)},
              description="Every flight scheduled that day scored once by the production model: flight_id, "
              "flight_date, p_late, model_version, scored_at, batch_id. Re-scoring replaces a day atomically "
              "and archives the replaced version.")
    def flight_delay_scores(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        settings = lakehouse.settings()
        window = context.partition_time_window
        started = time.perf_counter()
        version, rows, archived = score_days(settings, Registry(settings), days_in(window.start.date(), window.end.date()))
        seconds = time.perf_counter() - started
        yield dg.MaterializeResult(metadata={
            "dagster/row_count": sum(rows.values()), "model_version": version, "days": len(rows),
            "replaced_days_archived": archived, "seconds": round(seconds, 2),
            "rows_per_second": round(sum(rows.values()) / seconds) if seconds else None,
        })
        yield from per_partition(SCORES_KEY, {d.isoformat(): {"dagster/row_count": n, "model_version": version}
                                              for d, n in rows.items()})

    return [flight_features, model_candidate, model_preproduction, production_model, flight_delay_scores]

