"""Declarative automation, evaluated against a real instance and real materializations: which
assets a new day's delivery triggers."""

from datetime import datetime, timezone

import dagster as dg

from assets.jobs import DAILY_JOB, PUBLISH_JOB, REFERENCE_JOB


def _requested(result, defs) -> set[tuple[str, str | None]]:
    keys = {k for a in defs.resolve_asset_graph().assets_defs for k in a.keys}
    return {(k.to_user_string(), p) for k in keys for p in result.get_requested_partitions(k)}


def test_a_new_days_delivery_triggers_exactly_that_day_downstream(lakehouse):
    lh = lakehouse
    assert lh.run(REFERENCE_JOB).success
    assert lh.run(DAILY_JOB, "2013-01-01", "2013-01-03").success
    defs = lh.defs
    at = lambda h, m: datetime(2013, 1, 5, h, m, tzinfo=timezone.utc)  # noqa: E731

    before = dg.evaluate_automation_conditions(defs=defs, instance=lh.instance, evaluation_time=at(1, 55))
    assert _requested(before, defs) == set()
    # The nightly tick requests the day that just ended and, in the same tick, everything
    # downstream of it that is ready (eager conditions see what "will be requested").
    tick = dg.evaluate_automation_conditions(
        defs=defs, instance=lh.instance, evaluation_time=at(2, 5), cursor=before.cursor
    )
    requested = _requested(tick, defs)
    assert {
        ("raw/flights", "2013-01-04"),
        ("raw/weather", "2013-01-04"),
        ("staging/stg_nycflights__flights", "2013-01-04"),
        ("curated/fct_flights", "2013-01-04"),
        ("ml/flight_features_nowcast_2h", "2013-01-04"),
    } <= requested
    assert {p for _, p in requested} == {"2013-01-04"}  # that day only
    # Scores wait for a production model; training and promotion never run by themselves; the
    # timetable and the day-ahead features come from the day-ahead sensor (tests/test_day_ahead.py),
    # since a cron tick targets the day that just ended.
    names = {k for k, _ in requested}
    assert not names & {
        "ml/flight_delay_scores",
        "ml/model_candidate",
        "ml/production_model",
        "raw/schedules",
        "ml/flight_features",
    }

    # Once that day is built, the next tick republishes the catalog, then asks for nothing more.
    assert lh.run(DAILY_JOB, "2013-01-04").success
    after = dg.evaluate_automation_conditions(
        defs=defs, instance=lh.instance, evaluation_time=at(2, 6), cursor=tick.cursor
    )
    assert _requested(after, defs) == {("catalog/analytics", None)}
    assert lh.run(PUBLISH_JOB).success
    quiet = dg.evaluate_automation_conditions(
        defs=defs, instance=lh.instance, evaluation_time=at(2, 7), cursor=after.cursor
    )
    assert _requested(quiet, defs) == set()

    # A backfill that will publish is under way: a new day built meanwhile does not get a second
    # publish beside it (issue 23, finding 9: 6 runs instead of 4).
    from assets.bootstrap import submit_backfill

    submit_backfill(lh.instance, defs.resolve_asset_graph(), [dg.AssetKey(["catalog", "analytics"])], "re-publish")
    assert lh.run(DAILY_JOB, "2013-01-04").success
    busy = dg.evaluate_automation_conditions(
        defs=defs, instance=lh.instance, evaluation_time=at(2, 8), cursor=quiet.cursor
    )
    assert ("catalog/analytics", None) not in _requested(busy, defs)
