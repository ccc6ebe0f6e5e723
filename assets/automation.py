"""When each asset materializes itself: declared on the asset, evaluated by one sensor.

No job lists: a new asset downstream of the daily build gets ``downstream()`` and runs when its
inputs are fresh. Only what needs a person stays a job (promotion and rollback with approval).
"""

from __future__ import annotations

import dagster as dg

# Deliveries land overnight: the nightly tick ingests the day that just ended.
DELIVERY_CRON = "0 2 * * *"
# The reference deliveries (planes, airports, airlines) change rarely: once a week.
REFERENCE_CRON = "0 1 * * 1"
# A month's actuals are final one day after its last flight; report on the 3rd.
MONTH_CLOSED_CRON = "0 6 3 * *"
# The warehouse's file maintenance: after the night's builds, before the working day.
MAINTENANCE_CRON = "0 5 * * *"


def on_delivery() -> dg.AutomationCondition:
    return dg.AutomationCondition.on_cron(DELIVERY_CRON)


def on_reference_delivery() -> dg.AutomationCondition:
    return dg.AutomationCondition.on_cron(REFERENCE_CRON)


def downstream() -> dg.AutomationCondition:
    """Eager: as soon as any input partition is newly updated (or will be in the same tick), once
    none is missing or in progress; partitioned assets only in their latest time window."""
    return dg.AutomationCondition.eager()


def republish() -> dg.AutomationCondition:
    """For the catalog: any input newly updated, none in progress, and the catalog itself not in
    a running backfill or run (a backfill that will publish must not get a second publish beside
    it). Unlike eager, a missing partition elsewhere (a month not monitored yet, the backtest's
    first month) does not hold the whole catalog back."""
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("republish")


def nightly_maintenance() -> dg.AutomationCondition:
    return dg.AutomationCondition.on_cron(MAINTENANCE_CRON)


def month_closed() -> dg.AutomationCondition:
    return dg.AutomationCondition.on_cron(MONTH_CLOSED_CRON)


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "automation_condition_sensor",
        target=dg.AssetSelection.all(),
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Evaluates every asset's automation condition: nightly deliveries, everything "
        "downstream once its inputs are fresh, monthly monitoring once the month's actuals are final.",
    )
