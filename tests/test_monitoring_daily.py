"""A new day's monitoring touches only that day, and gives the row the month's run gives it."""

from __future__ import annotations

import shutil
from datetime import date

import dagster as dg
import polars as pl
from polars.testing import assert_frame_equal

from assets.monitoring.daily import DAILY_METRICS_KEY
from assets.monitoring.reports import DRIFT_KEY
from resources.ml.lake import lake_days
from resources.monitoring.daily_rows import read_daily_rows
from resources.monitoring.paths import DRIFT_ROWS, MONITORING_SCHEMA, QUALITY_ROWS
from resources.warehouse.lock import open_warehouse, warehouse_lock
from tests.conftest import make_lakehouse

DAY = "2013-02-20"


def test_a_day_writes_its_own_rows_which_the_monthly_run_reproduces(ml_lakehouse, tmp_path):
    src = ml_lakehouse.settings.root
    shutil.copytree(src, tmp_path / "lakehouse")
    shutil.copytree(src.parent / f"{src.name}.secrets", tmp_path / "lakehouse.secrets")
    lh = make_lakehouse(tmp_path / "lakehouse")
    with warehouse_lock(lh.settings), open_warehouse(lh.settings, read_only=False) as con:
        con.execute(f"drop schema if exists {MONITORING_SCHEMA} cascade")
    job = lh.defs.resolve_implicit_global_asset_job_def()

    def rows(kind: str) -> pl.DataFrame:
        return read_daily_rows(lh.settings, kind)

    result = job.execute_in_process(instance=lh.instance, asset_selection=[DAILY_METRICS_KEY], partition_key=DAY)
    assert result.success
    the_day = date.fromisoformat(DAY)
    for kind in (DRIFT_ROWS, QUALITY_ROWS):
        assert lake_days(lh.settings, kind, schema=MONITORING_SCHEMA) == [the_day]
    day_row = rows(DRIFT_ROWS)
    assert day_row.height == 1 and day_row["drift_share"][0] is not None and day_row["sample"][0] == "out_of_sample"
    quality = rows(QUALITY_ROWS)
    assert quality.height == 1 and 0.5 < quality["roc_auc"][0] < 1.0
    record = lh.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DAILY_METRICS_KEY, asset_partitions=[DAY]), limit=1
    ).records[0]
    meta = record.asset_materialization.metadata
    assert (
        meta["flights_scored"].value == day_row["flights_scored"][0] and meta["roc_auc"].value == quality["roc_auc"][0]
    )

    # The month's report computes every day of February; that day's row is the same, once.
    assert job.execute_in_process(instance=lh.instance, asset_selection=[DRIFT_KEY], partition_key="2013-02-01").success
    month = rows(DRIFT_ROWS)
    assert len(lake_days(lh.settings, DRIFT_ROWS, schema=MONITORING_SCHEMA)) == 28 == month.height
    monthly_row = month.filter(pl.col("metric_date") == the_day)
    # Equal up to float summation order (a mean over the day's rows in another order: ~1e-16).
    assert_frame_equal(monthly_row, day_row, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
