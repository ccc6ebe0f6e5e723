"""A new day's monitoring touches only that day, and gives the row the month's run gives it."""

from __future__ import annotations

import shutil

import dagster as dg
import polars as pl
from polars.testing import assert_frame_equal

from assets.monitoring.daily import DAILY_METRICS_KEY
from assets.monitoring.reports import DRIFT_KEY
from tests.conftest import make_lakehouse

DAY = "2013-02-20"


def test_a_day_writes_its_own_rows_which_the_monthly_run_reproduces(ml_lakehouse, tmp_path):
    src = ml_lakehouse.settings.root
    shutil.copytree(src, tmp_path / "lakehouse")
    shutil.copytree(src.parent / f"{src.name}.secrets", tmp_path / "lakehouse.secrets")
    lh = make_lakehouse(tmp_path / "lakehouse")
    base = lh.settings.root / "monitoring"
    shutil.rmtree(base / "daily_drift", ignore_errors=True)
    shutil.rmtree(base / "daily_quality", ignore_errors=True)
    job = lh.defs.resolve_implicit_global_asset_job_def()

    result = job.execute_in_process(instance=lh.instance, asset_selection=[DAILY_METRICS_KEY], partition_key=DAY)
    assert result.success
    assert sorted(p.name for p in (base / "daily_drift").iterdir()) == [f"day={DAY}.parquet"]
    assert sorted(p.name for p in (base / "daily_quality").iterdir()) == [f"day={DAY}.parquet"]
    day_row = pl.read_parquet(base / "daily_drift" / f"day={DAY}.parquet")
    assert day_row.height == 1 and day_row["drift_share"][0] is not None and day_row["sample"][0] == "out_of_sample"
    quality = pl.read_parquet(base / "daily_quality" / f"day={DAY}.parquet")
    assert 0.5 < quality["roc_auc"][0] < 1.0
    record = lh.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DAILY_METRICS_KEY, asset_partitions=[DAY]), limit=1
    ).records[0]
    meta = record.asset_materialization.metadata
    assert (
        meta["flights_scored"].value == day_row["flights_scored"][0] and meta["roc_auc"].value == quality["roc_auc"][0]
    )

    # The month's report computes every day of February; that day's row is the same.
    assert job.execute_in_process(instance=lh.instance, asset_selection=[DRIFT_KEY], partition_key="2013-02-01").success
    days = sorted(p.name for p in (base / "daily_drift").iterdir())
    assert len(days) == 28 and not any(p.startswith("month=") for p in days)
    monthly_row = pl.read_parquet(base / "daily_drift" / f"day={DAY}.parquet")
    # Equal up to float summation order (a mean over the day's rows in another order: ~1e-16).
    assert_frame_equal(monthly_row, day_row, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
