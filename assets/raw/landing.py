"""Deliveries as they land: one sensor per one-file-per-day source requests the day's partition
when its file appears or its content changes (resources/raw/landing.py)."""

import dagster as dg

from resources.raw.landing import scan
from resources.raw.sources import SourceSpec


def build_landing_sensor(spec: SourceSpec, raw_key: dg.AssetKey) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"landing_{spec.name}",
        asset_selection=[raw_key],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches {spec.location}: a new or changed file requests that day's partition "
        f"of {raw_key.to_user_string()} (once per content; the rest of the graph follows by its "
        "automation conditions).",
    )
    def landing(context: dg.SensorEvaluationContext):
        landed, cursor, ignored = scan(spec, context.cursor)
        for f in landed:
            yield dg.RunRequest(
                run_key=f"{spec.name}:{f.day}:{f.sha256[:16]}",
                partition_key=f.day.isoformat(),
                asset_selection=[raw_key],
                tags={
                    "lakehouse/landed_file": f.path.name,
                    "lakehouse/sha256": f.sha256,
                    "lakehouse/redelivery": str(f.redelivery).lower(),
                },
            )
        if ignored:
            context.log.info(f"ignored (no date in the source's partitions): {', '.join(ignored[:20])}")
        context.update_cursor(cursor)

    return landing
