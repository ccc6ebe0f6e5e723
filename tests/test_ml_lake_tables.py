"""ML tables in the warehouse DuckLake: a run's days are replaced in one transaction, or not at all."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

from resources.core.settings import Settings
from resources.ml.lake import lake_days, read_lake_days, write_lake_days

pytestmark = pytest.mark.fast  # `make test-fast`: no Dagster run, no dbt build

D1, D2 = date(2013, 1, 1), date(2013, 1, 2)


def _rows(day: date, n: int, value: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "flight_id": [f"{day}-{i}" for i in range(n)],
            "flight_date": [day] * n,
            "horizon": ["day_ahead"] * n,
            "x": [value] * n,
            "note": ['it\'s "$(rm -rf /)"; drop table x; --'] * n,
            "as_of": [datetime(2013, 1, 1, 3, tzinfo=timezone.utc)] * n,
        }
    )


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = Settings(root=tmp_path / "lakehouse", env="dev")
    s.ensure()
    return s


def test_days_are_replaced_whole_and_an_empty_day_counts_as_written(settings):
    assert read_lake_days(settings, "t").height == 0 and lake_days(settings, "t") == []
    write_lake_days(settings, "t", {D1: _rows(D1, 3), D2: _rows(D2, 0)})
    assert lake_days(settings, "t") == [D1, D2]  # D2 was built, with no rows
    write_lake_days(settings, "t", {D1: _rows(D1, 2, 5.0)})
    got = read_lake_days(settings, "t")
    assert got["x"].to_list() == [5.0, 5.0] and got["note"][0] == _rows(D1, 1)["note"][0]
    assert got.schema["as_of"] == pl.Datetime("us", "UTC")


def test_a_failure_inside_the_transaction_leaves_the_previous_rows(settings):
    write_lake_days(settings, "t", {D1: _rows(D1, 3)})

    def fail(con, days):
        raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        write_lake_days(settings, "t", {D1: _rows(D1, 1, 9.0)}, before_replace=fail)
    assert read_lake_days(settings, "t")["x"].to_list() == [1.0, 1.0, 1.0]


def test_a_new_column_is_added_and_other_horizons_are_untouched(settings):
    write_lake_days(settings, "s", {D1: _rows(D1, 2)}, "day_ahead")
    nowcast = _rows(D1, 1, 7.0).with_columns(pl.lit("nowcast_2h").alias("horizon"), pl.lit(3.0).alias("extra"))
    write_lake_days(settings, "s", {D1: nowcast}, "nowcast_2h")
    assert read_lake_days(settings, "s", horizon="day_ahead")["extra"].to_list() == [None, None]
    assert read_lake_days(settings, "s", D1, D2, "nowcast_2h")["x"].to_list() == [7.0]
    assert lake_days(settings, "s", "nowcast_2h") == [D1] == lake_days(settings, "s", "day_ahead")


def test_a_held_reader_sees_every_later_commit_and_a_lakehouse_built_again(settings):
    import shutil

    write_lake_days(settings, "t", {D1: _rows(D1, 1)})
    assert read_lake_days(settings, "t").height == 1  # the process now holds a reader on this lake
    write_lake_days(settings, "t", {D2: _rows(D2, 2).with_columns(pl.lit(2.0).alias("later"))})
    write_lake_days(settings, "u", {D1: _rows(D1, 4)})  # a table created after the reader opened
    assert read_lake_days(settings, "t")["later"].to_list() == [None, 2.0, 2.0]
    assert read_lake_days(settings, "u").height == 4
    shutil.rmtree(settings.warehouse_data)  # removed by hand and built again at the same path
    for name in ("warehouse.sqlite", "warehouse.sqlite-wal", "warehouse.sqlite-shm"):
        (settings.local_root / name).unlink(missing_ok=True)
    write_lake_days(settings, "t", {D1: _rows(D1, 5, 3.0)})
    assert read_lake_days(settings, "t")["x"].to_list() == [3.0] * 5
    assert lake_days(settings, "u") == []


def test_the_sqlite_catalog_is_in_wal_mode_so_a_reader_never_fails_a_commit(settings):
    import sqlite3

    from resources.warehouse.lock import warehouse_reader

    write_lake_days(settings, "t", {D1: _rows(D1, 1)})
    assert sqlite3.connect(settings.warehouse_catalog).execute("pragma journal_mode").fetchone()[0] == "wal"
    with warehouse_reader(settings) as reader:  # a reader's open transaction, e.g. a long copy
        assert reader.execute("select count(*) from ml.t").fetchone()[0] == 1
        write_lake_days(settings, "t", {D2: _rows(D2, 2)})  # commits ("database is locked" before WAL)
        assert reader.execute("select count(*) from ml.t").fetchone()[0] == 1  # its snapshot holds
    assert read_lake_days(settings, "t").height == 3


def test_a_backtest_month_replaces_its_scores_and_metrics_together_and_a_null_figure_keeps_the_type(settings):
    import numpy as np

    from resources.ml.lake import read_backtest_metrics, read_backtest_scores
    from resources.ml.model.backtest import MonthResult, write_month

    def month(name: str, day: date, roc_auc: float | None, n: int) -> MonthResult:
        scores = pl.DataFrame(
            {"flight_id": [f"{day}-{i}" for i in range(n)], "flight_date": [day] * n, "p_late": [0.5] * n}
        )
        metrics = {"month": name, "roc_auc": roc_auc, "flights": n, "trained_through": day}
        return MonthResult(name, None, scores, metrics, np.zeros(n), np.zeros(n))

    # The first month written has no ROC AUC (one class only): the column still takes later figures.
    write_month(settings, month("2013-01", D1, None, 2))
    write_month(settings, month("2013-02", date(2013, 2, 1), 0.7, 3))
    write_month(settings, month("2013-02", date(2013, 2, 1), 0.75, 4))  # a re-run replaces the month
    metrics = read_backtest_metrics(settings)
    assert metrics["month"].to_list() == ["2013-01", "2013-02"]
    assert metrics["roc_auc"].to_list() == [None, 0.75] and metrics["flights"].to_list() == [2, 4]
    assert read_backtest_scores(settings).height == 6


def test_monitoring_rows_are_lake_tables_of_their_own_schema_and_alerts_keep_hostile_text(settings):
    from resources.monitoring.alerts import append_alert, read_alerts
    from resources.monitoring.daily_rows import read_daily_rows, write_daily_rows
    from resources.monitoring.paths import DRIFT_ROWS, MONITORING_SCHEMA

    assert read_alerts(settings) == [] and read_daily_rows(settings, DRIFT_ROWS).height == 0
    day = pl.DataFrame({"metric_date": [D1, D2], "model_version": ["m", "m"], "flights_scored": [3, 0]})
    assert write_daily_rows(settings, DRIFT_ROWS, day) == {D1: 1, D2: 1}
    write_daily_rows(settings, DRIFT_ROWS, day.filter(pl.col("metric_date") == D2).with_columns(flights_scored=7))
    assert read_daily_rows(settings, DRIFT_ROWS)["flights_scored"].to_list() == [3, 7]  # D2 replaced, D1 kept
    assert lake_days(settings, DRIFT_ROWS, schema=MONITORING_SCHEMA) == [D1, D2]
    assert lake_days(settings, DRIFT_ROWS) == []  # the ml schema's bookkeeping is its own
    hostile = 'it\'s "$(rm -rf /)"; drop table x; --'
    first = append_alert(settings, {"kind": "check_failed", "check": hostile, "run_id": "r1", "nested": {"a": [1]}})
    append_alert(settings, {"kind": "run_failed", "run_id": "r2", "error": "x" * 10_000})
    alerts = read_alerts(settings)
    assert [a["run_id"] for a in alerts] == ["r1", "r2"] and alerts[0] == first
    assert alerts[0]["check"] == hostile and alerts[1]["error"] == "x" * 10_000 and "check" not in alerts[1]
