"""The ML lifecycle on real data: Jan-Feb 2013, trained on January, judged on late February."""

import json
import shutil
from dataclasses import replace
from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest

from assets.jobs import DAILY_JOB, PROMOTE_JOB, REFERENCE_JOB, SCORE_JOB
from assets.ml.promote import refused
from resources.catalog.publish import connect_catalog
from resources.ml.features.availability import DAY_AHEAD, HORIZONS, NOWCAST
from resources.ml.features.catalog import FEATURES_BY_HORIZON, Feature, undeclared_rules
from resources.ml.features.point_in_time import FLIGHT_LOOKBACK_DAYS, build_features
from resources.ml.features.time_guard import LeakageError, assert_point_in_time, time_violations
from resources.ml.lake import load_feature_inputs, read_features, scores_archive_dir
from resources.ml.model.scoring import read_scores
from resources.ml.model.training import TimeSplit
from resources.ml.registry.storage import ArtifactIntegrityError, Registry
from tests.conftest import APPROVAL, promote_config


def test_every_flight_of_a_scored_day_appears_once_from_the_production_model(ml_lakehouse):
    registry = Registry(ml_lakehouse.settings)
    for horizon in HORIZONS:  # each from its own production model
        production = registry.production_version(horizon)
        with connect_catalog(ml_lakehouse.settings) as con:
            per_day = con.execute(
                """
                select f.flight_date, count(*) as flights, count(s.flight_id) as scored,
                       count(distinct s.flight_id) as distinct_scored, min(s.model_version), max(s.model_version)
                from curated.fct_flights f left join ml.flight_delay_scores s on s.flight_id = f.flight_id
                     and s.horizon = $1
                group by 1 order by 1""",
                [horizon],
            ).fetchall()
            p = con.execute(
                "select min(p_late), max(p_late) from ml.flight_delay_scores where horizon = $1", [horizon]
            ).fetchone()
        assert len(per_day) == 59
        assert all(n == scored == distinct for _, n, scored, distinct, _, _ in per_day), horizon
        assert {r[4] for r in per_day} == {r[5] for r in per_day} == {production}
        assert 0 < p[0] < p[1] < 1
    assert registry.production_version(HORIZONS[0]) != registry.production_version(HORIZONS[1])


def test_registry_audit_and_features_in_the_catalog(ml_lakehouse):
    with connect_catalog(ml_lakehouse.settings) as con:
        registry = con.execute(
            "select model_version, status, holdout_roc_auc, test_start from ml.model_registry "
            "where status <> 'backtest' order by horizon"
        ).fetchall()
        audit = con.execute("select horizon, event from ml.model_audit order by event_at").fetchall()
        definitions = con.execute("select count(*), count(distinct owner) from ml.feature_definitions").fetchone()
        features = con.execute("select count(*) from ml.flight_features").fetchone()[0]
    # One production model per horizon (day_ahead, nowcast_2h), each with its own audit trail.
    assert len(registry) == 2 and {r[1] for r in registry} == {"production"}
    assert all(0.6 < r[2] < 0.9 and str(r[3]) == "2013-02-15" for r in registry)
    for horizon in HORIZONS:
        assert [e for h, e in audit if h == horizon] == ["registered", "preproduction_passed", "promoted"]
    assert definitions == (len(FEATURES_BY_HORIZON[NOWCAST]), 1)
    assert features > 50_000


def test_time_splits_do_not_overlap(ml_lakehouse):
    record = Registry(ml_lakehouse.settings).record(Registry(ml_lakehouse.settings).production_version())
    split = TimeSplit(
        *(date.fromisoformat(record["split"][k]) for k in ("train_start", "validation_start", "test_start", "test_end"))
    )
    days = pl.DataFrame({"d": pl.date_range(date(2013, 1, 1), date(2013, 2, 28), eager=True)})
    assigned = days.with_columns(split.assign(pl.col("d")).alias("s"))
    spans = assigned.group_by("s").agg(pl.col("d").min().alias("lo"), pl.col("d").max().alias("hi")).sort("lo")
    assert spans["s"].to_list() == ["train", "validation", "test"]
    assert spans["hi"][0] < spans["lo"][1] and spans["hi"][1] < spans["lo"][2]
    assert record["rows"]["train"] > record["rows"]["test"] > 0
    with pytest.raises(ValueError, match="ordered"):
        TimeSplit(date(2013, 2, 1), date(2013, 1, 1), date(2013, 3, 1), date(2013, 4, 1))


def _features_as_they_were(inputs, start, end):
    """The day-ahead features plus what the model read before prediction time was declared: weather
    observed at the scheduled hour and over the flight's whole day, and the late rate of the whole
    previous day (its flights arriving after the cut-off included)."""
    features = build_features(inputs, start, end, DAY_AHEAD)
    weather = inputs.weather
    hourly = weather.select(
        "origin", pl.col("observed_hour_local").alias("_hour"), pl.col("visibility_mi").alias("visibility_at_departure")
    )
    daily = weather.group_by("origin", pl.col("observed_hour_local").dt.date().alias("flight_date")).agg(
        pl.col("precip_in").sum().alias("origin_day_precip_in")
    )
    flights = inputs.flights.with_columns(
        (pl.col("cancelled") | pl.col("diverted") | (pl.col("arr_delay") >= 15)).cast(pl.Float64).alias("_late")
    )
    yesterday = flights.group_by("origin", (pl.col("flight_date") + pl.duration(days=1)).alias("flight_date")).agg(
        pl.col("_late").mean().alias("late_rate_whole_previous_day")
    )
    day = flights.filter(pl.col("flight_date").is_between(start, end, closed="left")).select(
        "flight_id", "origin", "flight_date", pl.col("scheduled_departure_local").dt.truncate("1h").alias("_hour")
    )
    old = (
        day.join(hourly, on=["origin", "_hour"], how="left")
        .join(daily, on=["origin", "flight_date"], how="left")
        .join(yesterday, on=["origin", "flight_date"], how="left")
        .select("flight_id", "visibility_at_departure", "origin_day_precip_in", "late_rate_whole_previous_day")
    )
    return features.join(old, on="flight_id", how="left")


@pytest.mark.parametrize("horizon", HORIZONS)
def test_time_guard_passes_todays_features_and_fails_the_old_ones(ml_lakehouse, horizon):
    day = date(2013, 2, 10)
    inputs = load_feature_inputs(ml_lakehouse.settings, day, date(2013, 2, 11))
    assert_point_in_time(inputs, day, horizon)  # the real features read nothing from after their as_of
    # (flight_id: later readings of the same hour duplicate flights joined on the local hour)
    caught = set(time_violations(inputs, day, horizon, build=_features_as_they_were)) - {"flight_id"}
    old = {"visibility_at_departure", "origin_day_precip_in", "late_rate_whole_previous_day"}
    if horizon == DAY_AHEAD:
        assert caught == old
    else:  # two hours before a midday departure the previous day is usually known
        assert {"visibility_at_departure", "origin_day_precip_in"} <= caught <= old
    planted = {
        "taxi_guess": (pl.col("dep_delay") > 30).cast(pl.Float64),
        "late_share_at_origin": pl.col("arrived_late").cast(pl.Float64).mean().over("origin"),
    }
    # Predicted from the delivered rows, a flight's own actuals are there to be read: caught.
    delivered = replace(inputs, schedules=None)
    assert time_violations(delivered, day, horizon, extra=planted) == ["late_share_at_origin", "taxi_guess"]
    with pytest.raises(LeakageError, match="taxi_guess"):
        assert_point_in_time(delivered, day, horizon, extra=planted)
    # Predicted from the published timetable (as built), they do not exist yet: nothing to read.
    built = build_features(inputs, day, day + timedelta(days=1), horizon, planted)
    assert built.height > 800 and built.select(pl.col(list(planted)).is_null().all()).row(0) == (True, True)


@pytest.mark.parametrize("horizon", HORIZONS)
def test_the_flights_predicted_are_the_published_timetable_not_the_delivered_day(ml_lakehouse, horizon):
    """A flight added or re-tailed on the day is known only from the delivery, after the fact: the
    flights predicted and their schedule columns come from the timetable published before the day."""
    day = date(2013, 2, 10)
    inputs = load_feature_inputs(ml_lakehouse.settings, day, day + timedelta(days=1))
    reference = build_features(inputs, day, day + timedelta(days=1), horizon)
    todays = pl.col("flight_date") == day
    first, second = inputs.schedules.filter(todays).sort("flight_id")["flight_id"].head(2)
    added = inputs.flights.filter(todays & (pl.col("flight_id") == first)).with_columns(
        pl.lit("added-on-the-day").alias("flight_id")
    )
    retailed = inputs.flights.with_columns(
        pl.when(todays & (pl.col("flight_id") == second))
        .then(pl.lit("another aircraft"))
        .otherwise(pl.col("tailnum_key"))
        .alias("tailnum_key")
    )
    changed = replace(inputs, flights=pl.concat([retailed, added]))
    built = build_features(changed, day, day + timedelta(days=1), horizon)
    assert "added-on-the-day" not in built["flight_id"].to_list()
    if horizon == DAY_AHEAD:
        assert built.equals(reference)
    else:  # the added departure is an operation of the day (it may count for later flights), but
        # the re-tailed flight keeps the timetable's aircraft and rotation
        planes = ["flight_id", *[c for c in reference.columns if c.startswith("plane_")]]
        assert len(planes) > 3 and built.select(planes).equals(reference.select(planes))
    # Without a timetable for the day, its delivered rows are the flights predicted.
    assert (
        "added-on-the-day"
        in build_features(replace(changed, schedules=inputs.schedules.clear()), day, day + timedelta(days=1), horizon)[
            "flight_id"
        ].to_list()
    )


def test_every_feature_declares_an_availability_rule_and_as_of_precedes_the_flight(ml_lakehouse):
    assert undeclared_rules(FEATURES_BY_HORIZON[NOWCAST]) == []
    assert undeclared_rules((Feature("gate_agent_mood", "numeric", "?", known="forecast"),)) == [
        "gate_agent_mood (known 'forecast')"
    ]
    settings = ml_lakehouse.settings
    for horizon in HORIZONS:
        stored = read_features(settings, date(2013, 2, 10), date(2013, 2, 11), horizon)
        flights = (
            load_feature_inputs(settings, date(2013, 2, 10), date(2013, 2, 11))
            .flights.filter(pl.col("flight_date") == date(2013, 2, 10))
            .select("flight_id", "scheduled_departure_utc")
        )
        rows = stored.join(flights, on="flight_id")
        assert rows.height == stored.height > 800 and set(stored["horizon"]) == {horizon}
        if horizon == DAY_AHEAD:  # 22:00 New York time (EST: 03:00 UTC) on the evening before
            assert set(stored["as_of"].dt.replace_time_zone(None).cast(pl.String)) == {"2013-02-10 03:00:00.000000"}
        else:
            lead = (rows["scheduled_departure_utc"].dt.convert_time_zone("UTC") - rows["as_of"]).dt.total_minutes()
            assert lead.min() == lead.max() == 120


def test_rescoring_a_day_is_idempotent_and_keeps_the_replaced_version(ml_lakehouse):
    day = "2013-02-20"
    one = (date.fromisoformat(day), date.fromisoformat(day) + timedelta(days=1))
    before = read_scores(ml_lakehouse.settings, *one).sort("flight_id")
    assert ml_lakehouse.run(SCORE_JOB, day).success
    after = read_scores(ml_lakehouse.settings, *one).sort("flight_id")
    # Scoring batches days (one predict call per chunk), so a day scored alone and within a month
    # may differ in the last bit (the logistic member's input is sparse or dense by batch density).
    assert after.drop("scored_at", "p_late").equals(before.drop("scored_at", "p_late"))
    assert (after["p_late"] - before["p_late"]).abs().max() <= 1e-12
    assert after["scored_at"][0] > before["scored_at"][0]
    archived = list((scores_archive_dir(ml_lakehouse.settings) / f"flight_date={day}").glob("*.parquet"))
    assert len(archived) == 1
    assert pl.read_parquet(archived[0]).sort("flight_id").equals(before)


def test_tampered_artifact_is_refused(ml_lakehouse):
    registry = Registry(ml_lakehouse.settings)
    version = registry.production_version()
    artifact = str(registry.resolve(registry.record(version)["artifact_path"]))
    backup = artifact + ".bak"
    shutil.copy2(artifact, backup)
    try:
        with open(artifact, "ab") as fh:
            fh.write(b"tampered")
        with pytest.raises(ArtifactIntegrityError, match="sha256"):
            registry.load(version)
        result = ml_lakehouse.run(SCORE_JOB, "2013-02-21", raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert "refusing to load" in str(failure.step_failure_data.error.cause or failure.step_failure_data.error)
    finally:
        shutil.move(backup, artifact)
    assert registry.load(version) is not None


def _register_copy(registry: Registry, source: str, version: str, validation_auc: float) -> None:
    """A new version holding the production pipeline, with a stated validation AUC, passed to pre-production."""
    record = registry.record(source)
    pipeline = registry.load(source)
    record = {k: v for k, v in record.items() if not k.startswith("artifact")}
    registry.register(
        pipeline,
        {**record, "model_version": version, "validation": {**record["validation"], "roc_auc": validation_auc}},
    )
    registry.record_preproduction(version, True, {"note": "pytest"})


def test_promotion_needs_approval_and_a_better_model_and_can_roll_back(ml_lakehouse):
    registry = Registry(ml_lakehouse.settings)
    original = registry.production_version()

    _register_copy(registry, original, "flight-delay-99990101T000000-worse", 0.5)
    run = ml_lakehouse.run(PROMOTE_JOB, run_config=promote_config(**APPROVAL), raise_on_error=False)
    # A refusal is an observation of the gate, not a failed run: production_model stays as it was.
    assert run.success and "does not beat production" in refused(run)
    assert not run.get_asset_materialization_events() and registry.production_version() == original
    # No approval at all is refused by the launchpad's config schema, before a run exists...
    with pytest.raises(dg.DagsterInvalidConfigError, match="approver"):
        ml_lakehouse.run(PROMOTE_JOB, run_config=promote_config(model_version="flight-delay-99990101T000000-worse"))
    # ...and a blank one by the job's config mapping, before a run exists too.
    with pytest.raises(dg.DagsterConfigMappingFunctionError):
        ml_lakehouse.run(
            PROMOTE_JOB,
            run_config=promote_config(model_version="flight-delay-99990101T000000-worse", approver=" ", reason=""),
        )

    _register_copy(registry, original, "flight-delay-99990102T000000-better", 0.99)
    assert ml_lakehouse.run(
        PROMOTE_JOB, run_config=promote_config(model_version="flight-delay-99990102T000000-better", **APPROVAL)
    ).success
    assert registry.production_version() == "flight-delay-99990102T000000-better"

    assert ml_lakehouse.run(
        PROMOTE_JOB,
        run_config=promote_config(action="rollback", approver="pytest", reason="rolling back a test promotion"),
    ).success
    assert registry.production_version() == original

    events = [(e["event"], e["version"]) for e in registry.audit()]
    assert ("promotion_refused", "flight-delay-99990101T000000-worse") in events
    refusals = [e for e in registry.audit() if e["event"] == "promotion_refused"]
    assert not any("approver and reason" in r["refusal"] for r in refusals)  # the blank one never ran
    assert "does not beat production" in refusals[0]["refusal"]
    promoted = [e for e in registry.audit() if e["event"] == "promoted"][-1]
    assert promoted["actor"] == "pytest" and promoted["previous_version"] == original
    # The gate compares on the validation window (the production model's own, here): never the holdout.
    assert promoted["metrics"]["production_validation_roc_auc"] == pytest.approx(
        registry.record(original)["validation"]["roc_auc"], abs=1e-9
    )
    assert events[-1] == ("rolled_back", original)
    assert (
        json.loads((ml_lakehouse.settings.root / "ml" / "registry" / "models" / f"{original}.json").read_text())[
            "model_version"
        ]
        == original
    )


def test_features_of_a_day_never_change_when_later_days_arrive(lakehouse):
    assert lakehouse.run(REFERENCE_JOB).success
    assert lakehouse.run(DAILY_JOB, "2013-01-01", "2013-01-10").success
    jan_10 = (date(2013, 1, 10), date(2013, 1, 11))
    before = read_features(lakehouse.settings, *jan_10)
    assert lakehouse.run(DAILY_JOB, "2013-01-11", "2013-01-15").success
    assert lakehouse.run(DAILY_JOB, "2013-01-08", "2013-01-15").success  # rebuilds Jan 10 with later days present
    after = read_features(lakehouse.settings, *jan_10)
    assert before.height == after.height > 900
    assert after.drop("batch_id").equals(before.drop("batch_id"))


@pytest.mark.parametrize("horizon", HORIZONS)
def test_features_built_in_passes_equal_one_pass_over_the_window(ml_lakehouse, horizon):
    """The feature build holds one pass of days at a time and builds it a few days per call
    (bounded memory at scale): a flight's features must depend neither on where a pass starts nor
    on which days are built together from one pass's rows."""
    from resources.ml.features.build import day_groups

    settings = ml_lakehouse.settings
    start, end = date(2013, 1, 20), date(2013, 3, 1)
    inputs = load_feature_inputs(settings, start, end)
    whole = build_features(inputs, start, end, horizon).sort("flight_id")
    parts, day, history = [], start, None
    while day < end:
        stop = min(day + timedelta(days=9), end)
        fresh = load_feature_inputs(settings, day, stop)
        # As the build does: the flights the pass before read are carried, only new days are read.
        carried = load_feature_inputs(settings, day, stop, history)
        assert carried.flights.sort("flight_id").equals(fresh.flights.sort("flight_id"))
        parts.append(build_features(carried, day, stop, horizon))
        history = (carried.flights.filter(pl.col("flight_date") >= stop - timedelta(days=FLIGHT_LOOKBACK_DAYS)), stop)
        day = stop
    passes = pl.concat(parts).sort("flight_id")
    assert passes.height == whole.height > 30_000
    assert passes.equals(whole)
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    groups = day_groups(dict.fromkeys(days, 1), days, 4)
    assert len(groups) == 10
    calls = [build_features(inputs, g[0], g[-1] + timedelta(days=1), horizon) for g in groups]
    assert pl.concat(calls).sort("flight_id").equals(whole)
    # ... and the stored table (written by the build, in passes) holds exactly these rows.
    stored = read_features(settings, start, end, horizon).sort("flight_id")
    assert stored.equals(whole)


@pytest.mark.fast
def test_days_are_built_in_groups_bounded_by_rows():
    from resources.ml.features.build import day_groups

    days = [date(2013, 1, d) for d in range(1, 7)]
    rows = dict(zip(days, [3, 3, 5, 1, 0, 2], strict=True))
    assert day_groups(rows, days, 6) == [days[0:2], [days[2], days[3], days[4]], [days[5]]]
    assert day_groups(rows, days, 2) == [[days[0]], [days[1]], [days[2]], [days[3], days[4]], [days[5]]]
    assert day_groups(rows, days, 100) == [days]
    assert day_groups({}, [], 5) == []


def test_features_do_not_depend_on_the_installations_pseudonym_key(ml_lakehouse):
    """Each installation hashes tail numbers with its own key; the features (the hot-deck donor of
    a flight without a tail number included) must come out the same under any key."""
    import hashlib

    from resources.ml.features.point_in_time import FeatureInputs, build_features

    start, end = date(2013, 2, 1), date(2013, 3, 1)
    inputs = load_feature_inputs(ml_lakehouse.settings, start, end)

    def rekey(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.col("tailnum_key").map_elements(
                lambda k: hashlib.sha256(f"other installation {k}".encode()).hexdigest(), return_dtype=pl.String
            )
        )

    other = FeatureInputs(
        rekey(inputs.flights), inputs.weather, rekey(inputs.planes), inputs.dates, rekey(inputs.schedules)
    )
    mine, theirs = build_features(inputs, start, end), build_features(other, start, end)
    assert inputs.flights.filter(pl.col("flight_date") >= start)["tailnum_key"].null_count() > 100
    assert theirs.equals(mine)
