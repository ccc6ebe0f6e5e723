"""Monitoring on real scores: Evidently reports for Jan and Feb 2013, the index, the catalog
tables, re-runs, actuals that have not arrived, and a planted drift raising an alert."""

import json
import re
import shutil
import subprocess

import dagster as dg
import polars as pl
import pytest

from assets.jobs import MONITOR_JOB, PUBLISH_JOB
from assets.monitoring import DRIFT_KEY, QUALITY_KEY
from resources.catalog import connect_catalog
from resources.lakehouse_resource import LakehouseResource
from resources.ml_features import CATEGORICAL, FEATURE_NAMES
from resources.ml_registry import Registry
from resources.ml_store import features_dir
from resources.monitoring import read_alerts, workspace_dir


def monitor(lh, start, end=None, as_of="", raise_on_error=True):
    config = {"ops": {"monitoring__quality_report": {"config": {"as_of": as_of}}}}
    return lh.run(MONITOR_JOB, start, end, run_config=config, raise_on_error=raise_on_error)


def reports_on_disk(lh) -> set[str]:
    root = lh.settings.reports_dir
    return {str(p.relative_to(root)) for p in root.glob("*/*.html")}


def test_quality_is_not_computed_before_the_actuals_arrive(ml_lakehouse):
    assert monitor(ml_lakehouse, "2013-02-01", as_of="2013-02-20").success
    reports = ml_lakehouse.settings.reports_dir
    assert (reports / "drift" / "drift_2013-02.html").exists()
    assert not (reports / "quality" / "quality_2013-02.html").exists()
    assert "2013-02-01" not in ml_lakehouse.instance.get_materialized_partitions(QUALITY_KEY)
    assert "2013-02-01" in ml_lakehouse.instance.get_materialized_partitions(DRIFT_KEY)


@pytest.fixture(scope="module")
def monitored(ml_lakehouse):
    assert monitor(ml_lakehouse, "2013-01-01", "2013-02-01").success
    assert ml_lakehouse.run(PUBLISH_JOB).success
    return ml_lakehouse


def test_reports_build_with_the_expected_sections(monitored):
    reports = monitored.settings.reports_dir
    production = Registry(monitored.settings).production_version()
    drift = (reports / "drift" / "drift_2013-01.html").read_text()
    quality = (reports / "quality" / "quality_2013-02.html").read_text()
    assert "Drifted Columns" in drift and "DATA DRIFT" in drift
    assert "Model Quality Metrics" in quality and "RocAuc" in quality
    assert not re.search(r'<script[^>]+src="https?://', drift)  # opens offline
    sidecar = json.loads((reports / "quality" / "quality_2013-02.json").read_text())
    assert sidecar["model_version"] == production and 0.55 < sidecar["roc_auc"] < 0.9
    assert sum(p.stat().st_size for p in reports.glob("*/*.html")) < 4 * 10_000_000


def test_index_lists_exactly_the_reports_on_disk_newest_first(monitored):
    index = (monitored.settings.reports_dir / "index.html").read_text()
    links = re.findall(r'<a href="([^"]+)"', index)
    assert set(links) == reports_on_disk(monitored) and len(links) == 4
    periods = re.findall(r"<tr><td>(\d{4}-\d{2})</td>", index)
    assert periods == sorted(periods, reverse=True)


def test_monitoring_tables_answer_in_the_catalog(monitored):
    with connect_catalog(monitored.settings) as con:
        rows, days, labelled, bad_share = con.execute("""
            select count(*), count(distinct metric_date), count(roc_auc),
                   count(*) filter (where drift_share not between 0 and 1)
            from monitoring.daily_metrics""").fetchone()
        prediction_mean = con.execute("select avg(prediction_mean) from monitoring.daily_metrics").fetchone()[0]
    assert rows == days == 59
    assert labelled >= 58  # a day whose flights were all on time (or all late) has no ROC AUC
    assert bad_share == 0 and 0.1 < prediction_mean < 0.5


def test_rerunning_a_period_replaces_its_report_and_rows(monitored):
    before = reports_on_disk(monitored)
    assert monitor(monitored, "2013-01-01").success
    assert monitored.run(PUBLISH_JOB).success
    assert reports_on_disk(monitored) == before
    with connect_catalog(monitored.settings) as con:
        jan = con.execute("select count(*), count(distinct metric_date) from monitoring.daily_metrics "
                          "where metric_date < date '2013-02-01'").fetchone()
    assert jan == (31, 31)
    runs = json.loads((workspace_dir(monitored.settings) / "runs.json").read_text())
    assert sorted(runs) == ["drift 2013-01", "drift 2013-02", "quality 2013-01", "quality 2013-02"]


def test_index_opens_in_headless_chromium_and_its_links_resolve(monitored):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    index = monitored.settings.reports_dir / "index.html"
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={index.parent / '.chromium'}",
         "--dump-dom", index.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    links = re.findall(r'<a href="([^"]+)"', dom)
    assert 'id="reports"' in dom and len(links) == 4
    assert all((index.parent / link).resolve().exists() for link in links)


def test_a_planted_shift_raises_a_drift_warning_and_an_alert(monitored, tmp_path):
    feb = sorted(features_dir(monitored.settings).glob("flight_date=2013-02-*/part.parquet"))
    backup = tmp_path / "features"
    for path in feb:
        (backup / path.parent.name).mkdir(parents=True)
        shutil.copy2(path, backup / path.parent.name / path.name)
        frame = pl.read_parquet(path)
        numeric = [c for c in FEATURE_NAMES if c not in CATEGORICAL]
        frame.with_columns([(pl.col(c) * 3 + 100) for c in numeric]).write_parquet(path)
    try:
        assert monitor(monitored, "2013-02-01").success
        check = dg.AssetCheckKey(DRIFT_KEY, "drift_share_within_threshold")
        record = monitored.instance.event_log_storage.get_latest_asset_check_execution_by_key([check])[check]
        evaluation = record.event.asset_check_evaluation
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN

        defs = monitored.defs
        sensor = defs.resolve_sensor_def("monitoring_alerts")
        context = dg.build_sensor_context(
            instance=monitored.instance,
            resources={"lakehouse": LakehouseResource(root=str(monitored.settings.root), env="dev")},
        )
        sensor(context)
        alerts = [a for a in read_alerts(monitored.settings) if a["kind"] == "check_failed"]
        assert len(alerts) == 1
        details = json.loads(alerts[0]["details"])
        assert "2013-02" in details
        assert details["2013-02"]["model_version"] == Registry(monitored.settings).production_version()
        assert "distance_mi" in details["2013-02"]["drifted_features"]
        sensor(context)  # the same failed evaluation is not alerted twice
        assert len([a for a in read_alerts(monitored.settings) if a["kind"] == "check_failed"]) == 1
    finally:
        for path in feb:
            shutil.copy2(backup / path.parent.name / path.name, path)
        monitor(monitored, "2013-02-01")
