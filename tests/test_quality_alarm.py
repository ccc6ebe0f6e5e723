"""The quality alarm on real runs (Jan-May 2013; a model trained Jan-Mar, selected on April, tested
on May; walk-forward backtest Feb-May): an untouched out-of-sample month is judged against the range
the backtest months before it showed and stays quiet; an October-like drop planted in its labels
(late and on-time outcomes swapped for a share of flights, the late rate unchanged) raises the
alarm, which names the metric and the range, fails its check, records an alert, and shows in the
index's per-month table of drift vs quality alarms."""

import json
import re
from contextlib import contextmanager
from datetime import date

import dagster as dg
import numpy as np
import polars as pl
import pytest

from assets.jobs import BACKTEST_JOB, DAILY_JOB, MONITOR_JOB, PROMOTE_JOB, REFERENCE_JOB, SCORE_JOB, TRAIN_JOB
from assets.monitoring.reports import QUALITY_KEY
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.lake import load_labels
from resources.ml.model.scoring import read_scores
from resources.monitoring.alerts import read_alerts
from resources.monitoring.auc import auc
from resources.monitoring.quality import MIN_RANGE_MONTHS, read_backtest_metrics
from resources.warehouse.lock import open_warehouse, warehouse_lock
from tests.conftest import APPROVAL, make_lakehouse, promote_config

RANGE_CHECK = dg.AssetCheckKey(QUALITY_KEY, "quality_within_backtest_range")
SPLIT = {
    "train_start": "2013-01-01",
    "validation_start": "2013-04-01",
    "test_start": "2013-05-01",
    "test_end": "2013-06-01",
}
MAY = (date(2013, 5, 1), date(2013, 6, 1))


@pytest.fixture(scope="module")
def quality_lakehouse(tmp_path_factory):
    lh = make_lakehouse(tmp_path_factory.mktemp("quality") / "lakehouse")
    assert lh.run(REFERENCE_JOB).success
    assert lh.run(DAILY_JOB, "2013-01-01", "2013-05-31").success
    assert lh.run(TRAIN_JOB, run_config={"ops": {"ml__model_candidate": {"config": SPLIT}}}).success
    assert lh.run(PROMOTE_JOB, run_config=promote_config(**APPROVAL)).success
    assert lh.run(SCORE_JOB, "2013-01-01", "2013-05-31").success
    assert lh.run(BACKTEST_JOB, "2013-02-01", "2013-05-01").success
    return lh


def monitor(lh, start, end=None):
    return lh.run(
        MONITOR_JOB, start, end, run_config={"ops": {"monitoring__quality_report": {"config": {"as_of": ""}}}}
    )


def sidecar(lh, kind, month) -> dict:
    return json.loads((lh.settings.reports_dir / kind / f"{kind}_{month}.json").read_text())


def latest_check(lh, key):
    return lh.instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[
        key
    ].event.asset_check_evaluation


def alarms_in_index(lh) -> dict[str, list[str]]:
    """The index's drift-vs-quality table: month -> [drift alarm, quality alarm, agree]."""
    index = (lh.settings.reports_dir / "index.html").read_text()
    table = re.search(r'<table id="alarms">.*?</table>', index, re.S).group(0)
    rows = re.findall(
        r'<tr data-month="([\d-]+)"><td>[\d-]+</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td>'
        r"<td[^>]*>([^<]*)</td>",
        table,
    )
    return {m: [d, q, a] for m, d, q, a in rows}


def planted_drop(settings, start: date, end: date, below: float) -> tuple[list[str], list[str], float]:
    """An October-like drop: the smallest share (steps of 5 %) of [start, end)'s late flights whose
    outcomes, swapped with as many on-time flights' (the late rate stays), take the ROC AUC of
    the month's production scores below ``below``. Returns the flights to make on time, those to
    make late, and the ROC AUC they give."""
    scored = read_scores(settings, start, end).select("flight_id", "p_late")
    labelled = scored.join(load_labels(settings, start, end), on="flight_id")
    rng = np.random.default_rng(0)
    late = rng.permutation(labelled.filter(pl.col("is_late") == 1)["flight_id"].sort().to_numpy()).tolist()
    on_time = rng.permutation(labelled.filter(pl.col("is_late") == 0)["flight_id"].sort().to_numpy()).tolist()
    for share in np.arange(0.05, 0.65, 0.05):
        k = int(share * len(late))
        flipped = labelled.with_columns(
            pl.when(pl.col("flight_id").is_in(late[:k]))
            .then(0)
            .when(pl.col("flight_id").is_in(on_time[:k]))
            .then(1)
            .otherwise(pl.col("is_late"))
            .alias("is_late")
        )
        if (value := auc(flipped)) < below:
            return late[:k], on_time[:k], value
    raise AssertionError(f"swapping 60 % of late flights leaves ROC AUC {value:.3f} >= {below:.3f}")


@contextmanager
def swapped_labels(settings, start: date, end: date, to_on_time: list[str], to_late: list[str]):
    """Swap outcomes in the warehouse (``to_on_time``: arrived on time; ``to_late``: 60 minutes
    late); the original rows are put back on exit."""
    with warehouse_lock(settings), open_warehouse(settings, read_only=False) as con:
        original = pl.from_arrow(
            con.sql(
                "select flight_id, cancelled, diverted, arr_delay from curated.fct_flights "
                "where flight_date >= ? and flight_date < ?",
                params=[start, end],
            ).to_arrow_table()
        )
    changed = original.filter(pl.col("flight_id").is_in(to_on_time + to_late))
    assert changed.height == len(to_on_time) + len(to_late)

    def write(rows: pl.DataFrame) -> None:
        with warehouse_lock(settings), open_warehouse(settings, read_only=False) as con:
            con.register("planted", rows.to_arrow())
            con.execute(
                "update curated.fct_flights as f set cancelled = p.cancelled, diverted = p.diverted, "
                "arr_delay = p.arr_delay from planted p where f.flight_id = p.flight_id"
            )

    write(
        changed.with_columns(
            pl.lit(False).alias("cancelled"),
            pl.lit(False).alias("diverted"),
            pl.when(pl.col("flight_id").is_in(to_on_time))
            .then(0)
            .otherwise(60)
            .cast(original.schema["arr_delay"])
            .alias("arr_delay"),
        )
    )
    try:
        yield
    finally:
        write(changed)


@pytest.fixture(scope="module")
def untouched(quality_lakehouse):
    assert monitor(quality_lakehouse, "2013-04-01", "2013-05-01").success
    return quality_lakehouse


def test_an_untouched_out_of_sample_month_is_judged_against_the_backtest_range_and_stays_quiet(untouched):
    may = sidecar(untouched, "quality", "2013-05")
    assert may["sample"] == "out_of_sample" and may["quality_status"] == "judged"
    assert may["quality_source"].startswith("production model"), may["quality_source"]
    assert not may["quality_alarm"], may["quality_reason"]
    assert "within the backtest range" in may["quality_reason"]
    # The range is the backtest's own figures for the months before May (those that stayed in
    # their own range), stored with the verdict.
    rng = may["quality_range"]
    backtest = read_backtest_metrics(untouched.settings)
    assert backtest["month"].to_list() == ["2013-02", "2013-03", "2013-04", "2013-05"]
    used = backtest.filter(pl.col("month").is_in(rng["months"]))
    assert len(rng["months"]) >= MIN_RANGE_MONTHS and set(rng["months"]) | set(rng["excluded"]) == {
        "2013-02",
        "2013-03",
        "2013-04",
    }
    assert rng["roc_auc"] == [round(used["roc_auc"].min(), 4), round(used["roc_auc"].max(), 4)]
    assert may["quality_figures"]["roc_auc"] >= rng["roc_auc"][0]
    assert may["quality_figures"]["calibration_error"] == pytest.approx(may["calibration_error"], abs=1e-4)
    details = json.loads(latest_check(untouched, RANGE_CHECK).metadata["details"].value)
    assert "2013-05" not in details  # (April may alarm: see below)
    # April: the model was selected on it, so the alarm judges the walk-forward backtest's scores
    # of April (out of sample by construction), never the in-sample ones.
    april = sidecar(untouched, "quality", "2013-04")
    assert april["sample"] == "in_sample" and april["quality_status"] == "judged"
    assert april["quality_source"].startswith("walk-forward backtest")
    assert april["quality_figures"]["roc_auc"] == pytest.approx(april["backtest_roc_auc"], abs=1e-4)
    assert april["quality_range"]["months"] == ["2013-02", "2013-03"]
    assert ("2013-04" in details) == april["quality_alarm"]
    # Drift: the model's drift thresholds were fitted on Jan-Mar, never on April or May.
    assert sidecar(untouched, "drift", "2013-05")["threshold_fit"] == "after_training"
    table = alarms_in_index(untouched)
    assert table["2013-05"][1] == "no"
    for drift, quality, agree in table.values():
        judged = drift in ("yes", "no") and quality in ("yes", "no")
        assert agree == (("yes" if drift == quality else "no") if judged else "-")


def test_a_planted_quality_drop_raises_the_quality_alarm_naming_metric_and_range(untouched):
    lh = untouched
    quiet = sidecar(lh, "quality", "2013-05")
    try:
        # 0.02 below the range: October 2013 was 0.006 below the backtest months before it.
        to_on_time, to_late, planted = planted_drop(
            lh.settings, *MAY, below=quiet["quality_range"]["roc_auc"][0] - 0.02
        )
        with swapped_labels(lh.settings, *MAY, to_on_time, to_late):
            assert monitor(lh, "2013-05-01").success
            may = sidecar(lh, "quality", "2013-05")
            assert may["late_rate"] == pytest.approx(quiet["late_rate"])  # the rate did not move
            assert may["roc_auc"] == pytest.approx(planted, abs=0.002)  # the planted labels reached monitoring
            assert may["roc_auc"] < quiet["quality_range"]["roc_auc"][0] < quiet["roc_auc"]
            assert may["quality_alarm"] and may["quality_status"] == "judged"
            assert re.search(
                r"ROC AUC 0\.\d{3} below the backtest range 0\.\d{3}\.\.0\.\d{3} of 2013-0", may["quality_reason"]
            )
            assert may["quality_range"] == quiet["quality_range"]  # the labels of May never set May's range

            evaluation = latest_check(lh, RANGE_CHECK)
            details = json.loads(evaluation.metadata["details"].value)
            assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
            assert "2013-05" in details and "ROC AUC" in details["2013-05"]["reason"]
            assert details["2013-05"]["range"]["months"] == quiet["quality_range"]["months"]

            sensor = lh.defs.resolve_sensor_def("monitoring_alerts")
            sensor(
                dg.build_sensor_context(
                    instance=lh.instance,
                    resources={"lakehouse": LakehouseResource(root=str(lh.settings.root), env="dev")},
                )
            )
            alerts = [a for a in read_alerts(lh.settings) if a.get("check") == RANGE_CHECK.to_user_string()]
            assert len(alerts) == 1 and "2013-05" in json.loads(alerts[0]["details"])

            table = alarms_in_index(lh)
            drift, quality, agree = table["2013-05"]
            assert quality == "yes" and agree == ("yes" if drift == "yes" else "no")
            index = (lh.settings.reports_dir / "index.html").read_text()
            assert "<b>QUALITY ALARM</b>: ROC AUC" in index
    finally:
        assert monitor(lh, "2013-05-01").success
    restored = sidecar(lh, "quality", "2013-05")
    assert not restored["quality_alarm"] and restored["roc_auc"] == pytest.approx(quiet["roc_auc"])


@pytest.mark.fast
def test_the_range_is_the_last_six_backtest_months_so_a_weak_first_month_sets_no_floor():
    """On the year, February's walk-forward month (trained on January alone, ROC AUC 0.615) set the
    floor for every later month, and November (0.666) and December (0.652) stayed quiet."""
    from resources.monitoring.quality import RANGE_MONTHS, judge_quality, quality_range

    aucs = {
        "2013-02": 0.615,
        "2013-03": 0.656,
        "2013-04": 0.686,
        "2013-05": 0.746,
        "2013-06": 0.735,
        "2013-07": 0.771,
        "2013-08": 0.686,
        "2013-09": 0.721,
        "2013-10": 0.686,
    }
    backtest = pl.DataFrame(
        {"month": list(aucs), "roc_auc": list(aucs.values()), "calibration_error": [0.05] * len(aucs)}
    )
    november = quality_range(backtest, "2013-11")
    assert RANGE_MONTHS == 6 and november.months == ("2013-05", "2013-06", "2013-07", "2013-08", "2013-09", "2013-10")
    assert november.roc_auc == (0.686, 0.771)
    verdict = judge_quality("2013-11", {"roc_auc": 0.666, "calibration_error": 0.05}, "out_of_sample", backtest)
    assert verdict.alarm and "ROC AUC 0.666 below the backtest range 0.686..0.771" in verdict.reason
    assert quality_range(backtest, "2013-04").months == ("2013-02", "2013-03")  # fewer months: all of them
