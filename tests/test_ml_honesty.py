"""Honest ML: leaks through missingness are caught, a missing aircraft carries no label
information, the backtest is out of sample, and every published figure recomputes from the catalog."""

import base64
from datetime import date

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from assets.jobs import BACKTEST_JOB, DAILY_JOB, PROMOTE_JOB, PUBLISH_JOB, REFERENCE_JOB, TRAIN_JOB
from assets.ml.backtest import BACKTEST_KEY
from assets.ml.model import CANDIDATE_KEY
from assets.ml.promote import refused
from resources.catalog.publish import connect_catalog
from resources.ml.features.catalog import FEATURES, Feature
from resources.ml.features.leakage_audit import leakage_audit
from resources.ml.features.point_in_time import FeatureInputs, build_features
from resources.ml.lake import (
    feature_table,
    load_feature_inputs,
    load_labels,
    read_backtest_scores,
    read_features,
    write_lake_days,
)
from resources.ml.model.candidate import leakage_audit_path
from resources.ml.model.scoring import read_scores
from resources.ml.model.training import predict
from resources.ml.registry.storage import BACKTEST, Registry
from tests.conftest import promote_config

AIRCRAFT = (
    "plane_leg_of_day",
    "plane_legs_of_day",
    "plane_gap_minutes",
    "plane_turn_slack_minutes",
    "plane_age_years",
    "plane_seats",
    "plane_engines",
    "plane_engine_type",
)
LATE_SQL = "(f.cancelled or f.diverted or f.arr_delay >= 15)::int"


def test_audit_names_a_planted_missingness_leak_and_a_value_leak(ml_lakehouse):
    settings = ml_lakehouse.settings
    data = read_features(settings, date(2013, 1, 1), date(2013, 2, 1)).join(
        load_labels(settings, date(2013, 1, 1), date(2013, 2, 1)), on="flight_id"
    )
    clean = leakage_audit(data)
    assert clean.filter(pl.col("problem").is_not_null()).height == 0
    assert clean.height == len(FEATURES) and clean["value_roc_auc"].max() < 0.8
    planted = data.with_columns(
        # missing exactly when the flight was late: an outcome deciding whether a value exists
        pl.when(pl.col("is_late") == 1).then(None).otherwise(pl.col("wx_precip_in")).alias("wx_precip_in"),
        # a value that is the outcome in disguise
        (pl.col("is_late") * 40.0 + pl.col("wx_temp_f") / 1000).alias("wx_temp_f"),
    )
    after_departure = Feature("taxi_out_minutes", "numeric", "planted", known="departure")
    audit = leakage_audit(planted.with_columns(pl.lit(1.0).alias("taxi_out_minutes")), [*FEATURES, after_departure])
    problems = dict(audit.filter(pl.col("problem").is_not_null()).select("feature", "problem").iter_rows())
    assert set(problems) == {"wx_precip_in", "wx_temp_f", "taxi_out_minutes"}
    assert (
        "decided by the outcome" in problems["wx_precip_in"]
        or "missingness alone separates" in problems["wx_precip_in"]
    )
    assert "value alone separates" in problems["wx_temp_f"]
    assert "no availability rule" in problems["taxi_out_minutes"]


def test_training_fails_before_registering_when_a_feature_file_leaks(lakehouse):
    assert lakehouse.run(REFERENCE_JOB).success
    assert lakehouse.run(DAILY_JOB, "2013-01-01", "2013-01-20").success
    settings = lakehouse.settings
    labels = load_labels(settings, date(2013, 1, 1), date(2013, 1, 21))
    features = read_features(settings)
    leaky = (
        features.join(labels, on="flight_id")
        .with_columns(
            pl.when(pl.col("is_late") == 1).then(None).otherwise(pl.col("wx_visibility_mi")).alias("wx_visibility_mi")
        )
        .drop("is_late")
    )
    write_lake_days(
        settings,
        feature_table(),
        {d: leaky.filter(pl.col("flight_date") == d) for d in features["flight_date"].unique()},
    )
    split = {
        "train_start": "2013-01-01",
        "validation_start": "2013-01-11",
        "test_start": "2013-01-16",
        "test_end": "2013-01-21",
    }
    result = lakehouse.run(
        TRAIN_JOB, run_config={"ops": {"ml__model_candidate": {"config": split}}}, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error.cause or failure.step_failure_data.error)
    assert "wx_visibility_mi" in message and "leakage audit failed" in message
    assert Registry(settings).versions() == []  # nothing trained or registered
    audit = pl.read_parquet(leakage_audit_path(settings))
    # (flights whose last reading had no visibility anyway dilute the null group: ~75 % late, not 100 %)
    assert audit.filter(pl.col("feature") == "wx_visibility_mi")["null_late_rate"][0] > 0.7


def test_a_missing_aircraft_carries_no_label_information(ml_lakehouse):
    settings = ml_lakehouse.settings
    registry = Registry(settings)
    model = registry.load(registry.production_version())
    day = date(2013, 2, 20)
    inputs = load_feature_inputs(settings, day, date(2013, 2, 21))
    before = build_features(inputs, day, date(2013, 2, 21))
    on_day = inputs.flights.filter(pl.col("flight_date") == day)
    blank = on_day.filter(pl.col("tailnum_key").is_not_null())["flight_id"].gather_every(5)

    def blanked_tails(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.when(pl.col("flight_id").is_in(blank.implode()))
            .then(None)
            .otherwise(pl.col("tailnum_key"))
            .alias("tailnum_key")
        )

    after = build_features(
        FeatureInputs(
            blanked_tails(inputs.flights), inputs.weather, inputs.planes, inputs.dates, blanked_tails(inputs.schedules)
        ),
        day,
        date(2013, 2, 21),
    )
    # Nothing about a blanked flight is missing: it takes a real flight's aircraft (same carrier and
    # origin that day), so its feature row is the row of a comparable flight that has one.
    blanked = after.filter(pl.col("flight_id").is_in(blank.implode()))
    assert blanked.height == blank.len() > 50
    assert blanked.select(AIRCRAFT[:2]).null_count().sum_horizontal()[0] == 0
    donors = before.join(on_day.select("flight_id", "carrier", "origin"), on="flight_id")
    for row in blanked.head(20).iter_rows(named=True):
        carrier, origin = row["carrier"], row["origin"]
        same = donors.filter((pl.col("carrier") == carrier) & (pl.col("origin") == origin))
        assert same.filter(pl.all_horizontal([pl.col(c).eq_missing(row[c]) for c in AIRCRAFT])).height > 0, row[
            "flight_id"
        ]
    others = [c for c in before.columns if c not in AIRCRAFT]
    assert after.select(others).equals(before.select(others))
    p_before = predict(model, before.filter(pl.col("flight_id").is_in(blank.implode())))
    p_after = predict(model, blanked)
    assert abs(float(np.mean(p_after) - np.mean(p_before))) < 0.03
    # The real flights without a tail number (all cancelled) are not singled out any more.
    scores = read_scores(settings)
    with connect_catalog(settings) as con:
        tailless = pl.from_arrow(
            con.sql("select flight_id from curated.fct_flights where tailnum_key is null").to_arrow_table()
        )
    tailless_p = scores.join(tailless, on="flight_id")["p_late"]
    assert tailless_p.len() > 100 and tailless_p.mean() < 0.9


def test_candidate_metadata_shows_curves_and_the_audit(ml_lakehouse):
    event = ml_lakehouse.instance.get_latest_materialization_event(CANDIDATE_KEY)
    meta = event.asset_materialization.metadata
    md = meta["curves_test"].value
    assert md.startswith("![") and "data:image/png;base64," in md
    png = base64.b64decode(md.split("base64,", 1)[1].rstrip(")"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    audit = meta["leakage_audit"].value
    assert {r.data["feature"] for r in audit.records} == {f.name for f in FEATURES}


def test_backtest_is_out_of_sample_never_promotable_and_recomputes_from_the_catalog(ml_lakehouse):
    lh, settings = ml_lakehouse, ml_lakehouse.settings
    registry = Registry(settings)
    production = registry.production_version()
    assert lh.run(BACKTEST_JOB, "2013-01-01", "2013-02-01").success
    # January has no earlier day to learn from: recorded with no rows and why (so a backfill counts
    # it done); February has its own figures.
    events = lh.instance.fetch_materializations(BACKTEST_KEY, limit=10).records
    months = {e.partition_key: e.asset_materialization.metadata for e in events}
    assert set(months) == {"2013-01-01", "2013-02-01"}
    assert (
        months["2013-01-01"]["dagster/row_count"].value == 0 and "no earlier" in months["2013-01-01"]["skipped"].value
    )
    scores = read_backtest_scores(settings)
    assert scores["flight_date"].min() == date(2013, 2, 1)
    assert (scores["trained_through"] < scores["flight_date"]).all()
    version = scores["model_version"][0]
    assert registry.statuses()[version] == BACKTEST
    run = lh.run(
        PROMOTE_JOB,
        run_config=promote_config(model_version=version, approver="pytest", reason="try a backtest model"),
        raise_on_error=False,
    )
    assert "backtest, not pre-production" in refused(run) and registry.production_version() == production
    assert lh.run(PUBLISH_JOB).success
    with connect_catalog(settings) as con:
        recomputed = con.execute(f"""select s.p_late, {LATE_SQL} from ml.backtest_scores s
                                     join curated.fct_flights f using (flight_id) order by flight_id""").fetchall()
        table = con.execute("select month, roc_auc, flights from ml.backtest_metrics").fetchall()
        holdout, test_start, test_end = con.execute(
            "select holdout_roc_auc, test_start, test_end from ml.model_registry where model_version = ?", [production]
        ).fetchone()
        prod = con.execute(
            f"""select s.p_late, {LATE_SQL} from ml.flight_delay_scores s
                               join curated.fct_flights f using (flight_id)
                               where s.horizon = 'day_ahead' and s.flight_date >= ?::date
                                     and s.flight_date < ?::date""",
            [test_start, test_end],
        ).fetchall()
    y, p = np.array([r[1] for r in recomputed]), np.array([r[0] for r in recomputed])
    assert table == [("2013-02", pytest.approx(roc_auc_score(y, p), abs=1e-12), len(y))]
    assert months["2013-02-01"]["roc_auc"].value == pytest.approx(table[0][1], abs=1e-12)
    y, p = np.array([r[1] for r in prod]), np.array([r[0] for r in prod])
    assert holdout == pytest.approx(roc_auc_score(y, p), abs=1e-9)


def test_single_run_backfills_record_each_days_own_row_count(ml_lakehouse):
    import dagster as dg

    from assets.ml.model import FEATURES_KEY, SCORES_KEY

    with connect_catalog(ml_lakehouse.settings) as con:
        per_day = dict(
            con.execute(
                "select flight_date::varchar, count(*) from curated.fct_flights "
                "where flight_date in ('2013-01-05', '2013-02-11') group by 1"
            ).fetchall()
        )
    for key in (FEATURES_KEY, SCORES_KEY):
        for day, flights in per_day.items():
            record = ml_lakehouse.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
            ).records[0]
            assert record.asset_materialization.metadata["dagster/row_count"].value == flights, (key, day)
    assert per_day["2013-01-05"] != per_day["2013-02-11"]
