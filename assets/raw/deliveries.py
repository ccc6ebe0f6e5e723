"""Raw assets: one per declared source, each ingesting deliveries under its schema contract."""

import dagster as dg

from assets.automation import on_delivery, on_reference_delivery
from assets.common import DATA_ENGINEERING, SINGLE_RUN, per_partition, run_row_count, table_schema
from assets.common import location as location_metadata
from resources.core.lakehouse_resource import LakehouseResource
from resources.raw.sources import SourceSpec
from resources.raw.volume import OVERRIDE_AUDIT_FILE, VolumeOverride
from resources.raw.zone import IngestSummary, ingest

CONTRACT_TYPES = {
    "int": "Int64",
    "float": "Float64",
    "string": "String",
    "date": "Date",
    "datetime_utc": "Datetime(UTC)",
}


class VolumeOverrideConfig(dg.Config):
    """Let partitions below the volume contract through; audited in raw/_volume_overrides.jsonl."""

    days: list[str] = []  # YYYY-MM-DD partitions of a daily source; empty for reference data
    approver: str
    reason: str


class RawIngestConfig(dg.Config):
    allow_volume_override: VolumeOverrideConfig | None = None

    def override(self) -> VolumeOverride | None:
        o = self.allow_volume_override
        return None if o is None else VolumeOverride.parse(o.days, o.approver, o.reason)


def volume_metadata(summary: IngestSummary) -> dict:
    """The expected and delivered volume; over a window, the partition closest to its floor."""
    checks = summary.volume_checks
    if not checks:
        return {}
    tightest = min(checks, key=lambda c: (c.rows / c.floor) if c.floor else float("inf"))
    meta: dict = {
        "volume_expected_min_rows": tightest.floor,
        "volume_min_rows": tightest.min_rows,
        "volume_delivered_rows": tightest.rows,
        "volume_checked_partitions": len(checks),
    }
    if tightest.day is not None:
        meta["volume_tightest_partition"] = str(tightest.day)
    if tightest.trailing_median is not None:
        meta["volume_trailing_median"] = tightest.trailing_median
    if summary.overrides:
        meta["volume_overrides"] = dg.MetadataValue.json(summary.overrides)
        meta["volume_override_audit"] = f"raw/{OVERRIDE_AUDIT_FILE}"
    if summary.unused_override_days:
        meta["volume_override_unused_days"] = ", ".join(str(d) for d in summary.unused_override_days)
    return meta


def summary_metadata(summary: IngestSummary) -> dict:
    """Row accounting on every materialization: delivered = raw + quarantined."""
    meta: dict = {
        **run_row_count(summary.raw_rows, len(summary.partitions)),
        "delivered_rows": summary.delivered,
        "raw_rows": summary.raw_rows,
        "quarantined_rows": summary.quarantined,
        "partitions_written": len(summary.partitions),
        "delivery_files": ", ".join(summary.files),
        "dagster/column_schema": table_schema(summary.schema),
    }
    if summary.undated_quarantined:
        meta["undated_quarantined_rows"] = summary.undated_quarantined
    if summary.quarantined:
        meta["quarantine_reasons"] = dict(summary.reasons.most_common(10)) | (
            {"undated": summary.undated_quarantined} if summary.undated_quarantined else {}
        )
    if summary.unexpected_columns:
        meta["unexpected_columns"] = ", ".join(summary.unexpected_columns)
    return meta | volume_metadata(summary)


def build_raw_asset(spec: SourceSpec, partitions_def: dg.PartitionsDefinition | None) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", spec.name])
    contract = {c.name: CONTRACT_TYPES[c.type] for c in spec.columns}
    location = (
        "raw/{name}/delivery_date=YYYY-MM-DD/part.parquet" if spec.is_partitioned else "raw/{name}/part.parquet"
    ).format(name=spec.name)

    @dg.asset(
        key=key,
        group_name="raw",
        kinds={"parquet", "polars"},
        owners=[DATA_ENGINEERING],
        description=f"{spec.description}\n\nDelivered from `{spec.location}`, typed by the contract "
        f"in resources/raw/sources.yml, written to `{location}` with lineage columns. Rows breaking "
        f"the contract go to `quarantine/{spec.name}/` with their reason. A delivery below the "
        f"volume contract fails before anything is replaced, unless run config "
        f"`allow_volume_override: {{days, approver, reason}}` lets it through (audited in "
        f"`raw/{OVERRIDE_AUDIT_FILE}`).",
        partitions_def=partitions_def if spec.is_partitioned else None,
        backfill_policy=SINGLE_RUN if spec.is_partitioned else None,
        # A source published ahead of its day (the timetable) is requested with the day-ahead
        # scores (assets/ml/day_ahead.py): a cron tick would target the day that just ended.
        automation_condition=(
            None if spec.published_days_ahead else on_delivery() if spec.is_partitioned else on_reference_delivery()
        ),
        metadata={"dagster/column_schema": table_schema(contract), "source_location": spec.location},
        check_specs=[
            dg.AssetCheckSpec(
                "no_quarantined_rows", asset=key, description="Warns when a delivery had rows that broke the contract."
            )
        ],
    )
    def _raw(context: dg.AssetExecutionContext, config: RawIngestConfig, lakehouse: LakehouseResource):
        settings = lakehouse.settings()
        window = context.partition_time_window if spec.is_partitioned else None
        days = (window.start.date(), window.end.date()) if window else (None, None)
        summary = ingest(settings, spec, context.run_id, *days, override=config.override())
        context.log.info(
            f"{spec.name}: delivered {summary.delivered}, raw {summary.raw_rows}, "
            f"quarantined {summary.quarantined} over {len(summary.partitions)} partition(s)"
        )
        yield dg.MaterializeResult(
            metadata=summary_metadata(summary) | location_metadata(settings, settings.raw_dir / spec.name),
            check_results=[
                dg.AssetCheckResult(
                    check_name="no_quarantined_rows",
                    passed=summary.quarantined == 0,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={
                        "quarantined_rows": summary.quarantined,
                        "quarantine": str(settings.quarantine_dir / spec.name),
                    },
                )
            ],
        )
        if spec.is_partitioned:  # each day's own accounting, not the run's totals (common.per_partition)
            yield from per_partition(
                key,
                {
                    str(p.day): {
                        "dagster/row_count": p.raw_rows,
                        "delivered_rows": p.delivered,
                        "quarantined_rows": p.quarantined,
                    }
                    for p in summary.partitions
                    if p.day is not None
                },
            )

    return _raw
