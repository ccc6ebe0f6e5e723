"""Monitoring on real scores (Jan-Feb 2013, model trained on January, test window from Feb 15):
in-sample labelling everywhere, Evidently reports, the index with its trend chart, the catalog
tables, re-runs that skip unchanged reports, actuals that have not arrived, and planted drift and
quality failures raising alerts."""

import base64
import json
import re
import shutil
import subprocess
from contextlib import contextmanager
from datetime import date

import dagster as dg
import polars as pl
import pytest

from assets.jobs import MONITOR_JOB, PUBLISH_JOB
from assets.monitoring.reports import DRIFT_KEY, QUALITY_KEY
from resources.catalog.publish import connect_catalog
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.lake import SCORES_TABLE, feature_table, read_lake_days, write_lake_days
from resources.ml.registry.storage import Registry
from resources.monitoring.alerts import read_alerts
from resources.monitoring.workspace import workspace_dir

DRIFT_CHECK = dg.AssetCheckKey(DRIFT_KEY, "drift_share_within_threshold")
QUALITY_CHECK = dg.AssetCheckKey(QUALITY_KEY, "auc_drop_within_threshold")


def monitor(lh, start, end=None, as_of="", raise_on_error=True):
    config = {"ops": {"monitoring__quality_report": {"config": {"as_of": as_of}}}}
    return lh.run(MONITOR_JOB, start, end, run_config=config, raise_on_error=raise_on_error)


def reports_on_disk(lh) -> set[str]:
    root = lh.settings.reports_dir
    return {str(p.relative_to(root)) for p in root.glob("*/*.html")}


def sidecar(lh, kind, month) -> dict:
    return json.loads((lh.settings.reports_dir / kind / f"{kind}_{month}.json").read_text())


def latest_check(lh, key):
    return lh.instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[
        key
    ].event.asset_check_evaluation


def materialization(lh, key):
    return lh.instance.get_latest_materialization_event(key).asset_materialization.metadata


@contextmanager
def edited(settings, table: str, start: date, end: date, edit, horizon: str | None = None):
    """Rewrite the rows of ``ml.<table>`` for [start, end) with ``edit`` for the duration of the
    block (a test's edit: nothing archived), then put the originals back."""
    original = read_lake_days(settings, table, start, end, horizon)
    by_day = lambda frame: {d: frame.filter(pl.col("flight_date") == d) for d in original["flight_date"].unique()}  # noqa: E731
    write_lake_days(settings, table, by_day(edit(original)), horizon)
    try:
        yield
    finally:
        write_lake_days(settings, table, by_day(original), horizon)


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
    drift = (reports / "drift" / "drift_2013-02.html").read_text()
    quality = (reports / "quality" / "quality_2013-02.html").read_text()
    assert "Drifted Columns" in drift and "PSI vs trailing 6 weeks" in drift
    assert "Model Quality Metrics" in quality and "RocAuc" in quality
    assert not re.search(r'<script[^>]+src="https?://', drift)  # opens offline
    assert re.search(r"<title>Quality 2013-02: out of sample \(14 days from 2013-02-15\)", quality)
    feb = sidecar(monitored, "quality", "2013-02")
    assert feb["model_version"] == production and feb["sample"] == "mixed"
    assert feb["out_of_sample_days"] == 14 and 0.55 < feb["roc_auc"] < 0.9
    assert feb["in_sample_flights"] + feb["out_of_sample_flights"] == feb["labelled_flights"]
    assert sum(p.stat().st_size for p in reports.glob("*/*.html")) < 3 * 10_000_000
    # January has no 14 days of history before it: drift is not judged, not faked.
    jan = sidecar(monitored, "drift", "2013-01")
    assert jan["status"] == "not_judged" and jan["html"] is None and jan["alarm"] is False


def test_in_sample_months_are_labelled_everywhere(monitored):
    jan = sidecar(monitored, "quality", "2013-01")
    assert jan["sample"] == "in_sample" and jan["roc_auc"] is None and jan["auc_drop"] is None
    assert jan["in_sample_roc_auc"] > 0.6  # the model learnt January: a flattering figure, kept but labelled
    html = (monitored.settings.reports_dir / "quality" / "quality_2013-01.html").read_text()
    assert "<title>Quality 2013-01: IN-SAMPLE" in html and 'id="monitoring-banner"' in html
    index = (monitored.settings.reports_dir / "index.html").read_text()
    row = re.search(r'<tr class="in_sample"><td>2013-01</td><td>quality</td>.*?</tr>', index).group(0)
    assert "IN-SAMPLE" in row and "not a quality estimate" in row and "<b>ROC AUC" not in row
    table = materialization(monitored, QUALITY_KEY)["by_month"].value
    samples = {r.data["month"]: r.data["sample"] for r in table.records}
    assert samples == {"2013-01": "IN-SAMPLE", "2013-02": "mixed (headline: out-of-sample days)"}
    with connect_catalog(monitored.settings) as con:
        by_sample = dict(con.execute("select sample, count(*) from monitoring.daily_metrics group by 1").fetchall())
    assert by_sample == {"in_sample": 31 + 14, "out_of_sample": 14}


def test_in_sample_months_never_alert_and_out_of_sample_ones_do(monitored, tmp_path):
    """Scores turned upside down (ROC AUC ~0.2): in January (in-sample) the check still passes; on the
    out-of-sample days of February it fails, naming the month and the out-of-sample AUC."""
    flip = lambda f: f.with_columns((1 - pl.col("p_late")).alias("p_late"))  # noqa: E731
    with edited(monitored.settings, SCORES_TABLE, date(2013, 1, 1), date(2013, 2, 1), flip, "day_ahead"):
        assert monitor(monitored, "2013-01-01").success
        assert sidecar(monitored, "quality", "2013-01")["in_sample_roc_auc"] < 0.4
        assert latest_check(monitored, QUALITY_CHECK).passed
    try:
        with edited(monitored.settings, SCORES_TABLE, date(2013, 2, 15), date(2013, 3, 1), flip, "day_ahead"):
            assert monitor(monitored, "2013-02-01").success
            evaluation = latest_check(monitored, QUALITY_CHECK)
            details = json.loads(evaluation.metadata["details"].value)
            assert not evaluation.passed and list(details) == ["2013-02"]
            assert details["2013-02"]["roc_auc_out_of_sample"] < 0.4 and "2013-01" not in details
    finally:
        assert monitor(monitored, "2013-01-01", "2013-02-01").success


def test_index_lists_every_report_with_a_trend_chart(monitored):
    index = (monitored.settings.reports_dir / "index.html").read_text()
    links = re.findall(r'<a href="([^"]+)"', index)
    assert set(links) == reports_on_disk(monitored) and len(links) == 3  # January drift: not judged
    periods = re.findall(r'<tr class="\w*"><td>(\d{4}-\d{2})</td>', index)
    assert periods == sorted(periods, reverse=True) and len(periods) == 4
    png = base64.b64decode(re.search(r'<img id="trend"[^>]+src="data:image/png;base64,([^"]+)"', index).group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    trend = materialization(monitored, DRIFT_KEY)["trend"].value
    assert trend.startswith("![trend](data:image/png;base64,")
    # Drift vs quality per month: January has no drift reference; neither month has the two
    # walk-forward months before it a quality range needs, so nothing is said to agree or not.
    alarms = re.search(r'<table id="alarms">.*?</table>', index, re.S).group(0)
    rows = dict(re.findall(r'<tr data-month="([\d-]+)">((?:<td[^>]*>[^<]*</td>){4})', alarms))
    cells = {m: re.findall(r"<td[^>]*>([^<]*)</td>", r)[1:] for m, r in rows.items()}
    assert cells["2013-01"] == ["not judged", "not judged", "-"]
    assert cells["2013-02"][0] in ("yes", "no") and cells["2013-02"][1:] == ["not judged", "-"]
    assert sidecar(monitored, "drift", "2013-02")["threshold_fit"] == "after_training"  # profile: January only
    assert "no backtest range" in sidecar(monitored, "quality", "2013-02")["quality_reason"]


def test_monitoring_tables_answer_in_the_catalog(monitored):
    with connect_catalog(monitored.settings) as con:
        rows, days, labelled, judged, bad_share = con.execute("""
            select count(*), count(distinct metric_date), count(roc_auc), count(drift_share),
                   count(*) filter (where drift_share not between 0 and 1)
            from monitoring.daily_metrics""").fetchone()
        prediction_mean = con.execute("select avg(prediction_mean) from monitoring.daily_metrics").fetchone()[0]
    assert rows == days == 59
    assert labelled >= 58  # a day whose flights were all on time (or all late) has no ROC AUC
    assert judged == 28 and bad_share == 0 and 0.1 < prediction_mean < 0.5


def test_rerunning_unchanged_inputs_skips_evidently(monitored):
    """Unchanged inputs: no Evidently run, no rewritten HTML, the same workspace runs. A truncated
    sidecar (a killed writer, a hand edit) only costs its own month a rebuild."""
    reports = monitored.settings.reports_dir
    truncated = reports / "quality" / "quality_2013-02.json"
    truncated.write_text(truncated.read_text()[:40])
    before = {p: p.stat().st_mtime_ns for p in reports.glob("*/*.html")}
    runs_before = json.loads((workspace_dir(monitored.settings) / "runs.json").read_text())
    assert monitor(monitored, "2013-01-01", "2013-02-01").success
    after = {p: p.stat().st_mtime_ns for p in reports.glob("*/*.html")}
    rebuilt = {p.name for p in after if after[p] != before[p]}
    assert rebuilt == {"quality_2013-02.html"}
    runs_after = json.loads((workspace_dir(monitored.settings) / "runs.json").read_text())
    assert sorted(runs_after) == sorted(runs_before) == ["drift 2013-02", "quality 2013-01", "quality 2013-02"]
    assert {k for k in runs_after if runs_after[k] != runs_before[k]} == {"quality 2013-02"}
    assert sidecar(monitored, "drift", "2013-02")["evidently_skipped"] is True
    assert sidecar(monitored, "quality", "2013-01")["evidently_skipped"] is True
    assert sidecar(monitored, "quality", "2013-02")["evidently_skipped"] is False
    assert materialization(monitored, QUALITY_KEY)["evidently_runs_skipped"].value == 1
    assert monitored.run(PUBLISH_JOB).success
    with connect_catalog(monitored.settings) as con:
        jan = con.execute(
            "select count(*), count(distinct metric_date) from monitoring.daily_metrics "
            "where metric_date < date '2013-02-01'"
        ).fetchone()
    assert jan == (31, 31)


def test_index_opens_in_headless_chromium_with_its_chart_and_links(monitored):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    index = monitored.settings.reports_dir / "index.html"
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={index.parent / '.chromium'}",
            "--dump-dom",
            index.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    links = re.findall(r'<a href="([^"]+)"', dom)
    assert 'id="reports"' in dom and len(links) == 3
    assert re.search(r'<img id="trend"[^>]+src="data:image/png;base64,', dom)
    assert all((index.parent / link).resolve().exists() for link in links)


def test_a_planted_shift_is_detected_in_its_month_and_named_in_the_alert(monitored, tmp_path):
    """One feature (distance) and p_late shifted in February: the drift check fails for February
    only, and the alert names both; the changed inputs rebuild the Evidently report."""
    assert json.loads((workspace_dir(monitored.settings) / "runs.json").read_text())
    try:
        feb = (date(2013, 2, 1), date(2013, 3, 1))
        with (
            edited(monitored.settings, feature_table(), *feb, lambda f: f.with_columns(pl.col("distance_mi") * 1.5)),
            edited(
                monitored.settings,
                SCORES_TABLE,
                *feb,
                lambda f: f.with_columns((pl.col("p_late") + 0.15).clip(0, 1)),
                "day_ahead",
            ),
        ):
            assert monitor(monitored, "2013-01-01", "2013-02-01").success
            evaluation = latest_check(monitored, DRIFT_CHECK)
            assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
            feb = sidecar(monitored, "drift", "2013-02")
            assert feb["evidently_skipped"] is False and feb["alarm"]

            sensor = monitored.defs.resolve_sensor_def("monitoring_alerts")
            context = dg.build_sensor_context(
                instance=monitored.instance,
                resources={"lakehouse": LakehouseResource(root=str(monitored.settings.root), env="dev")},
            )
            sensor(context)
            alerts = [
                a
                for a in read_alerts(monitored.settings)
                if a["kind"] == "check_failed" and a["check"] == DRIFT_CHECK.to_user_string()
            ]
            assert len(alerts) == 1
            details = json.loads(alerts[0]["details"])
            assert list(details) == ["2013-02"]  # the planted month, and only it
            assert details["2013-02"]["model_version"] == Registry(monitored.settings).production_version()
            assert details["2013-02"]["drifted"][:1] == ["p_late"] and "distance_mi" in details["2013-02"]["drifted"]
            assert "distance_mi" in details["2013-02"]["reason"] and details["2013-02"]["prediction_drifted"]
            sensor(context)  # the same failed evaluation is not alerted twice
            assert (
                len(
                    [
                        a
                        for a in read_alerts(monitored.settings)
                        if a["kind"] == "check_failed" and a["check"] == DRIFT_CHECK.to_user_string()
                    ]
                )
                == 1
            )
    finally:
        assert monitor(monitored, "2013-02-01").success


@pytest.mark.fast
def test_evidently_reads_a_reproducible_sample_only_of_large_months():
    from resources.monitoring.evidently_reports import EVIDENTLY_MAX_ROWS, evidently_rows, sampled_note

    small = pl.DataFrame({"flight_id": [f"f{i:07d}" for i in range(1000)]})
    assert evidently_rows(small) is small and sampled_note(small) == ""
    big = pl.DataFrame({"flight_id": [f"f{i:07d}" for i in range(EVIDENTLY_MAX_ROWS + 5)]})
    a, b = evidently_rows(big), evidently_rows(big.reverse())
    assert a.height == EVIDENTLY_MAX_ROWS and a.equals(b)  # the same rows whatever the read order
    assert "sample of 100,005 flights" in sampled_note(small, big)
