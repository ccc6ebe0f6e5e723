"""The code location: everything is built when Dagster loads it, not at import."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from assets.catalog.publish import build_catalog_asset
from assets.common import daily_partitions, monthly_partitions
from assets.jobs import DAY_AHEAD_JOB, build_jobs
from assets.ml.backtest import build_backtest_asset
from assets.ml.day_ahead import build_day_ahead_sensor
from assets.ml.model import FEATURES_KEY, NOWCAST_FEATURES_KEY, build_ml_assets
from assets.monitoring.daily import build_daily_monitoring
from assets.monitoring.reports import build_alert_sensors, build_monitoring
from assets.raw.deliveries import build_raw_asset
from assets.raw.landing import build_landing_sensor
from assets.warehouse.dbt import build_dbt_assets, dbt_project
from assets.warehouse.maintenance import build_maintenance_asset
from resources.core.lakehouse_resource import LakehouseResource
from resources.core.runs import heal_sensor
from resources.raw.sources import load_sources

EXECUTOR_ENV = "LAKEHOUSE_EXECUTOR"


def run_executor(environ: dict[str, str] | None = None) -> dg.ExecutorDefinition:
    """Where a run's steps execute, from LAKEHOUSE_EXECUTOR:

    - ``in_process`` (default): in the run's own process. A step in a process of its own first pays
      ~5-8 s of imports (dagster, polars, scikit-learn, dbt), most of a one-day increment; runs
      still run side by side (dagster.yaml: 2 at a time, the warehouse pool keeps DuckDB writers
      apart).
    - ``celery``: each step is a task on a Celery queue (dagster-celery), taken by workers on any
      machine (`dagster-celery worker start -A dagster_celery.app -y deploy/prod/celery.yaml`). The
      broker and result backend come from LAKEHOUSE_CELERY_BROKER / LAKEHOUSE_CELERY_BACKEND
      (e.g. redis://host:6379/0); the workers need the same instance (deploy/prod/dagster.yaml)
      and the same lakehouse root.
    """
    environ = os.environ if environ is None else environ
    choice = (environ.get(EXECUTOR_ENV) or "in_process").strip()
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(
            {"broker": {"env": "LAKEHOUSE_CELERY_BROKER"}, "backend": {"env": "LAKEHOUSE_CELERY_BACKEND"}},
            name="celery_executor",
        )
    raise ValueError(f"{EXECUTOR_ENV} must be in_process or celery, got {choice!r}")


def build_definitions(lakehouse: LakehouseResource | None = None) -> dg.Definitions:
    sources = load_sources()
    daily = daily_partitions(sources)
    raw = [build_raw_asset(spec, daily) for spec in sources.values()]
    project = dbt_project()
    dbt_reference, dbt_daily = build_dbt_assets(project, daily)
    ml = build_ml_assets(daily)
    monthly = monthly_partitions(sources)
    ml.append(build_backtest_asset(monthly))
    monitoring, checks = build_monitoring(monthly)
    monitoring.append(build_daily_monitoring(daily))
    catalog = build_catalog_asset(
        [*dbt_reference.keys, *dbt_daily.keys, *(k for a in [*ml, *monitoring] for k in a.keys)]
    )

    daily_keys = (
        [k for a in raw if a.partitions_def for k in a.keys]
        + list(dbt_daily.keys)
        + [FEATURES_KEY, NOWCAST_FEATURES_KEY]
    )
    reference_keys = [k for a in raw if not a.partitions_def for k in a.keys] + list(dbt_reference.keys)
    jobs, schedules, sensors = build_jobs(daily, monthly, daily_keys, reference_keys)
    sensors += [heal_sensor(), build_day_ahead_sensor(daily, DAY_AHEAD_JOB)]
    sensors += [
        build_landing_sensor(spec, dg.AssetKey(["raw", name]))
        for name, spec in sources.items()
        if spec.is_partitioned and spec.one_file_per_day
    ]
    sensors += build_alert_sensors([k for c in checks for k in c.check_keys], jobs)
    return dg.Definitions(
        executor=run_executor(),
        assets=[*raw, dbt_reference, dbt_daily, build_maintenance_asset(), *ml, *monitoring, catalog],
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={
            "lakehouse": lakehouse or LakehouseResource(),
            "dbt": DbtCliResource(
                project_dir=project,
                profiles_dir=str(project.profiles_dir),
                # The dbt installed beside this interpreter, whether or not the venv is activated.
                dbt_executable=str(Path(sys.executable).parent / "dbt"),
            ),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
