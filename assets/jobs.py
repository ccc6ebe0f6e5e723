"""Jobs that a person launches (promotion with approval; rebuilds and backfills from the UI), the
automation-condition sensor that runs the graph by itself (assets/automation.py: nightly
deliveries, everything downstream, monthly monitoring once a month closes, catalog republish)."""

import dagster as dg

from assets.automation import automation_sensor
from assets.catalog.publish import CATALOG_KEY
from assets.ml.backtest import BACKTEST_KEY
from assets.ml.keys import horizon_key
from assets.ml.model import FEATURES_KEY, PRODUCTION_KEY, SCORES_KEY, promotion_job_config
from assets.monitoring.reports import DRIFT_KEY, QUALITY_KEY
from resources.ml.features.availability import DAY_AHEAD, HORIZONS

REFERENCE_JOB = "reference_build"
DAILY_JOB = "daily_build"
DAY_AHEAD_JOB = "score_day_ahead"
PUBLISH_JOB = "publish_catalog"
TRAIN_JOB = "train_model"
PROMOTE_JOB = "promote_model"
SCORE_JOB = "score_flights"
MONITOR_JOB = "monitor_model"
BACKTEST_JOB = "backtest_model"


def of_horizon(job: str, horizon: str) -> str:
    """Training and scoring jobs exist per horizon: the plain name is the day-ahead one."""
    return job if horizon == DAY_AHEAD else f"{job}_{horizon}"


def build_jobs(
    daily: dg.PartitionsDefinition,
    monthly: dg.PartitionsDefinition,
    daily_keys: list[dg.AssetKey],
    reference_keys: list[dg.AssetKey],
):
    reference_job = dg.define_asset_job(
        REFERENCE_JOB,
        selection=dg.AssetSelection.assets(*reference_keys),
        description="Reference data (planes, airports, airlines), snapshots and dimensions.",
    )
    daily_job = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.assets(*daily_keys),
        partitions_def=daily,
        description="A day's flights and weather delivery, from raw through curated.",
    )
    day_ahead_job = dg.define_asset_job(
        DAY_AHEAD_JOB,
        selection=dg.AssetSelection.assets(
            dg.AssetKey(["raw", "schedules"]),
            dg.AssetKey(["staging", "stg_nycflights__schedules"]),
            dg.AssetKey(["curated", "fct_schedules"]),
            FEATURES_KEY,
            SCORES_KEY,
        ),
        partitions_def=daily,
        description="A day's published timetable through day-ahead features and scores: the day is scored "
        "before its flights are delivered (it needs the flights of the day before).",
    )
    publish_job = dg.define_asset_job(
        PUBLISH_JOB,
        selection=dg.AssetSelection.assets(CATALOG_KEY),
        description="Publish a new version of the analyst catalog (analytics.duckdb) from the current "
        "warehouse, ML and monitoring zones; open analyst sessions keep the version they opened.",
    )
    train_jobs = [
        dg.define_asset_job(
            of_horizon(TRAIN_JOB, h),
            selection=dg.AssetSelection.assets(
                horizon_key("model_candidate", h), horizon_key("model_preproduction", h)
            ),
            description=f"Train, register a {h} candidate, and prove it in pre-production.",
        )
        for h in HORIZONS
    ]
    promote_job = dg.define_asset_job(
        PROMOTE_JOB,
        selection=dg.AssetSelection.assets(PRODUCTION_KEY),
        config=promotion_job_config(),
        description="Promote (or roll back) a horizon's production model. Launch with run config "
        "ops: {ml__production_model: {config: {approver: ..., reason: ..., horizon: day_ahead}}}; "
        "a blank approver or reason is refused at submit.",
    )
    score_jobs = [
        dg.define_asset_job(
            of_horizon(SCORE_JOB, h),
            selection=dg.AssetSelection.assets(horizon_key("flight_delay_scores", h)),
            partitions_def=daily,
            description=f"Score every flight of the partition's days with the {h} production model.",
        )
        for h in HORIZONS
    ]

    monitor_job = dg.define_asset_job(
        MONITOR_JOB,
        selection=dg.AssetSelection.assets(DRIFT_KEY, QUALITY_KEY),
        partitions_def=monthly,
        description="Monthly drift and quality reports with their checks.",
    )
    backtest_job = dg.define_asset_job(
        BACKTEST_JOB,
        selection=dg.AssetSelection.assets(BACKTEST_KEY),
        partitions_def=monthly,
        description="Walk-forward backtest: each month scored by a model trained only on earlier days.",
    )
    return (
        [
            reference_job,
            daily_job,
            day_ahead_job,
            publish_job,
            *train_jobs,
            promote_job,
            *score_jobs,
            monitor_job,
            backtest_job,
        ],
        [],
        [automation_sensor()],
    )
