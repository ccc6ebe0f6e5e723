"""Jobs, the daily schedule and the sensor that republishes the catalog after builds."""


import dagster as dg

from assets.catalog import CATALOG_KEY

REFERENCE_JOB = "reference_build"
DAILY_JOB = "daily_build"
PUBLISH_JOB = "publish_catalog"



def build_jobs(daily: dg.PartitionsDefinition, daily_keys: list[dg.AssetKey], reference_keys: list[dg.AssetKey]):
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
    publish_job = dg.define_asset_job(PUBLISH_JOB, selection=dg.AssetSelection.assets(CATALOG_KEY))

    daily_schedule = dg.build_schedule_from_partitioned_job(
        daily_job, hour_of_day=2, name="daily_delivery_schedule",
        description="Each night, ingest the day's delivery and build it through curated.",
    )

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[reference_job, daily_job],
        request_job=publish_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        name="republish_catalog_after_build",
    )
    def republish_catalog(context: dg.RunStatusSensorContext):
        return dg.RunRequest(run_key=f"publish-after-{context.dagster_run.run_id}")

    return [reference_job, daily_job, publish_job], [daily_schedule], [republish_catalog]
