"""The model's lifecycle as assets: candidate -> pre-production -> production (approval-gated).

``build_ml_assets`` returns the whole ML layer: per horizon features (features.py), a candidate,
pre-production and scores (scores.py); one production gate for every horizon. The backtest is
backtest.py; `make promote` is promote.py.
"""

import json
from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from assets.automation import downstream, month_closed
from assets.common import frame_table
from assets.ml.features import build_features_asset
from assets.ml.keys import (  # noqa: F401 (other layers import the keys from here too)
    CANDIDATE_KEY,
    FEATURES_KEY,
    ML_KINDS,
    NOWCAST_FEATURES_KEY,
    NOWCAST_SCORES_KEY,
    PREPRODUCTION_KEY,
    PRODUCTION_KEY,
    SCORES_KEY,
    horizon_key,
)
from assets.ml.scores import build_scores_asset
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.features.availability import DAY_AHEAD, HORIZONS
from resources.ml.features.catalog import DATA_SCIENCE
from resources.ml.lake import labelled_days
from resources.ml.model.candidate import train_candidate
from resources.ml.model.plots import curves_png, md_image
from resources.ml.model.training import TimeSplit, latest_split
from resources.ml.registry.promotion import apply_decision, prove_newest_candidate
from resources.ml.registry.storage import PromotionRefused


class TrainingConfig(dg.Config):
    """Time windows ([start, next start)); the test window is judged once, after selection. Left
    empty, they follow the data (training.latest_split): on the embedded year Jan-Aug / Sep-Oct /
    Nov-Dec, and a month later once a month closes (the automation retrains then)."""

    train_start: str = ""
    validation_start: str = ""
    test_start: str = ""
    test_end: str = ""
    # Monitoring thresholds travel with the model (registry entry): warn when the share of drifted
    # columns exceeds this, or when ROC AUC falls this far below the holdout AUC.
    drift_share_warn: float = 0.5
    auc_drop_warn: float = 0.05

    def split(self, settings) -> TimeSplit:
        given = (self.train_start, self.validation_start, self.test_start, self.test_end)
        if any(given):
            if not all(given):
                raise ValueError("give all four of train_start, validation_start, test_start, test_end, or none")
            return TimeSplit(*(date.fromisoformat(d) for d in given))
        first, last = labelled_days(settings)
        return latest_split(first, last)


class PromotionConfig(dg.Config):
    """Launch the promote_model job with these filled in: the approval is recorded in the audit.
    The job refuses a missing or blank approver or reason at submit (`promotion_job_config`). The
    asset's own materialization ("Materialize all" included) needs none: without an approval it
    records a refusal, audited, and production is unchanged."""

    approver: str = Field(default="", description="Who approves: recorded verbatim in ml.model_audit.")
    reason: str = Field(default="", description="Why: recorded verbatim in ml.model_audit.")
    action: str = Field(default="promote", description="'promote' or 'rollback'.")
    model_version: str = ""  # default: the newest pre-production version of the horizon
    horizon: str = Field(
        default=DAY_AHEAD,
        description="day_ahead or nowcast_2h: whose production model changes "
        "(a version given by name changes its own horizon's).",
    )


def build_lifecycle_assets(horizon: str) -> list[dg.AssetsDefinition]:
    """A horizon's candidate and pre-production: each horizon has models of its own."""
    features, candidate_key = horizon_key("flight_features", horizon), horizon_key("model_candidate", horizon)
    preproduction_key = horizon_key("model_preproduction", horizon)

    @dg.asset(
        key=candidate_key,
        group_name="ml",
        kinds=ML_KINDS,
        owners=[DATA_SCIENCE],
        deps=[features],
        # Retrains when a month's actuals are final; promotion still needs a person.
        automation_condition=month_closed(),
        description=f"Trains the {horizon} model: a logistic baseline and gradient-boosted trees on the "
        "train window, picks the best on validation, judges it once on the test window, and registers it "
        "as a candidate of its horizon.",
    )
    def _candidate(context: dg.AssetExecutionContext, config: TrainingConfig, lakehouse: LakehouseResource):
        monitoring = {"drift_share_warn": config.drift_share_warn, "auc_drop_warn": config.auc_drop_warn}
        settings = lakehouse.settings()
        candidate = train_candidate(settings, config.split(settings), monitoring, context.run_id, horizon)
        record, result, t = candidate.record, candidate.result, candidate.result.test
        png = curves_png(
            result.test_labels,
            result.test_predictions,
            f"{record['model_version']}: test window {record['split']['test_start']} .. "
            f"{record['split']['test_end']} (out of sample)",
        )
        return dg.MaterializeResult(
            metadata={
                "model_version": record["model_version"],
                "horizon": horizon,
                "family": result.family,
                "params": result.params,
                "test_roc_auc": t["roc_auc"],
                "test_pr_auc": t["pr_auc"],
                "test_log_loss": t["log_loss"],
                "test_brier": t["brier"],
                "test_calibration_error": t["calibration_error"],
                "validation_roc_auc": result.validation["roc_auc"],
                "rows": result.rows,
                "candidates_tried": frame_table(
                    pl.DataFrame([{**r, "params": json.dumps(r["params"], sort_keys=True)} for r in result.tried])
                ),
                "curves_test": dg.MetadataValue.md(
                    md_image(png, "ROC, precision-recall and calibration on the test window")
                ),
                "calibration_test": frame_table(pl.DataFrame(t["calibration"])),
                "leakage_audit": frame_table(candidate.audit, limit=candidate.audit.height),
                "artifact_sha256": record["artifact_sha256"],
                "data_version": record["data_version"],
                "code_version": record["code_version"],
            }
        )

    @dg.asset(
        key=preproduction_key,
        group_name="ml",
        kinds=ML_KINDS,
        owners=[DATA_SCIENCE],
        deps=[candidate_key, features],
        # A new candidate is proven at once; a new feature day alone changes nothing here.
        automation_condition=downstream().ignore(dg.AssetSelection.assets(features)),
        description=f"Proves the newest {horizon} candidate scores a sample of operational data (the "
        "latest feature day, no labels) with the production scores schema; passes it to pre-production.",
    )
    def _preproduction(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        return dg.MaterializeResult(metadata=prove_newest_candidate(lakehouse.settings(), horizon))

    return [_candidate, _preproduction]


def build_ml_assets(daily: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=PRODUCTION_KEY,
        group_name="ml",
        kinds=ML_KINDS,
        owners=[DATA_SCIENCE],
        deps=[horizon_key("model_preproduction", h) for h in HORIZONS],
        output_required=False,
        description="The production model of each horizon. Changes only through the promote_model job "
        "with an approver and a reason, when the new version beats that horizon's production model on "
        "the candidate's validation window (or a rollback). A refused request is an observation of this asset "
        "(`refused`), audited in ml.model_audit; production is unchanged and the asset stays green.",
    )
    def production_model(context: dg.AssetExecutionContext, config: PromotionConfig, lakehouse: LakehouseResource):
        try:
            event = apply_decision(
                lakehouse.settings(),
                config.action,
                config.approver,
                config.reason,
                config.model_version,
                config.horizon,
            )
        except PromotionRefused as exc:
            # A refusal is the gate working, not a broken model: recorded, never a failed materialization.
            context.log.warning(f"refused: {exc}")
            context.log_event(
                dg.AssetObservation(
                    asset_key=PRODUCTION_KEY,
                    metadata={
                        "refused": str(exc),
                        "action": config.action,
                        "horizon": config.horizon,
                        "model_version": config.model_version or "(newest pre-production)",
                        "approver": config.approver,
                        "reason": config.reason,
                    },
                )
            )
            return
        yield dg.MaterializeResult(
            metadata={
                "model_version": event["version"],
                "horizon": event.get("horizon", DAY_AHEAD),
                "previous_version": str(event.get("previous_version")),
                "approver": event["actor"],
                "reason": event["reason"],
                "at": event["at"],
                **{k: v for k, v in (event.get("metrics") or {}).items() if v is not None},
            }
        )

    return [
        *(build_features_asset(daily, h) for h in HORIZONS),
        *(a for h in HORIZONS for a in build_lifecycle_assets(h)),
        production_model,
        *(build_scores_asset(daily, h) for h in HORIZONS),
    ]


PRODUCTION_OP = PRODUCTION_KEY.to_python_identifier()  # "ml__production_model", the key in run config


def require_approval(run_config: dict) -> dict:
    """The promote_model job's run config, refused before a run exists when the approver or the
    reason is blank (Dagster's config schema can require a string, not a non-blank one)."""
    config = run_config["ops"][PRODUCTION_OP]["config"]
    blank = [name for name in ("approver", "reason") if not config[name].strip()]
    if blank:
        raise ValueError(
            f"promote_model needs a non-blank approver and reason: {' and '.join(blank)} "
            f"{'is' if len(blank) == 1 else 'are'} blank. Nothing was run or recorded."
        )
    return run_config


def promotion_job_config() -> dg.ConfigMapping:
    """The launchpad's schema for promote_model: the asset's config with approver and reason required,
    checked non-blank by `require_approval` when the run is submitted."""
    fields = dict(PromotionConfig.to_config_schema().as_field().config_type.fields)
    for name in ("approver", "reason"):
        fields[name] = dg.Field(str, is_required=True, description=fields[name].description)
    return dg.ConfigMapping(
        config_fn=require_approval,
        config_schema={
            "ops": {PRODUCTION_OP: {"config": fields}},
            # `make promote` quiets the console logger; the rest of a run config is not the job's to take.
            "loggers": dg.Field(dg.Permissive(), is_required=False),
        },
    )
