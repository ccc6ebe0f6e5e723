"""Day-ahead scores exist before the day's flights are delivered, and delivery changes nothing."""

from datetime import date, datetime, timedelta, timezone

import pytest

from assets.jobs import DAILY_JOB, DAY_AHEAD_JOB, PROMOTE_JOB, REFERENCE_JOB, SCORE_JOB, TRAIN_JOB
from assets.ml.day_ahead import FLIGHTS_KEY, due_days, is_materialized, published_through
from resources.ml.features.availability import NOWCAST
from resources.ml.features.build import DayBeforeMissing, build_and_store_features
from resources.ml.lake import SCORES_TABLE, feature_days, lake_days, read_features
from resources.ml.model.scoring import read_scores
from tests.conftest import APPROVAL, promote_config

DAY = date(2013, 1, 21)
SPLIT = {
    "train_start": "2013-01-01",
    "validation_start": "2013-01-11",
    "test_start": "2013-01-16",
    "test_end": "2013-01-21",
}


def test_a_day_is_scored_from_its_timetable_before_its_flights_arrive(lakehouse):
    settings = lakehouse.settings
    assert lakehouse.run(REFERENCE_JOB).success
    assert lakehouse.run(DAILY_JOB, "2013-01-01", "2013-01-20").success
    assert lakehouse.run(TRAIN_JOB, run_config={"ops": {"ml__model_candidate": {"config": SPLIT}}}).success
    assert lakehouse.run(PROMOTE_JOB, run_config=promote_config(**APPROVAL)).success

    # The day-ahead sensor's rule: at 01:00 on Jan 21 Jan 20's flights are not in yet, so nothing
    # is due; once they are (02:00), Jan 21 is, though none of its flights is delivered.
    first, last = date(2013, 1, 1), date(2013, 12, 31)
    scored = lambda d: d < DAY or d in lake_days(settings, SCORES_TABLE, "day_ahead")  # (earlier days: a backfill's)  # noqa: E731
    assert (
        due_days(datetime(2013, 1, 21, 6, tzinfo=timezone.utc), first, last, lambda d: d < date(2013, 1, 20), scored)
        == []
    )
    assert due_days(
        datetime(2013, 1, 21, 7, 5, tzinfo=timezone.utc),
        first,
        last,
        lambda d: is_materialized(lakehouse.instance, FLIGHTS_KEY, d),
        scored,
    ) == [DAY]
    assert lakehouse.run(DAY_AHEAD_JOB, DAY.isoformat()).success
    assert not (settings.raw_dir / "flights" / f"delivery_date={DAY}").exists()
    assert DAY not in feature_days(settings, NOWCAST)  # the nowcast needs the day's flights
    before = read_features(settings, DAY, DAY + timedelta(days=1)).sort("flight_id")
    scores = read_scores(settings, DAY, DAY + timedelta(days=1)).sort("flight_id")
    assert scores.height == before.height > 800 and set(scores["horizon"]) == {"day_ahead"}
    midnight_utc = datetime(2013, 1, 21, 5, tzinfo=timezone.utc)  # 00:00 in New York (EST)
    assert (scores["as_of"] < midnight_utc).all() and (scores["scored_at"] > midnight_utc).all()

    # Then the day's flights (with their actuals) arrive and everything is rebuilt from them: the
    # day-ahead features and scores do not move, since they never read what the day recorded.
    assert lakehouse.run(DAILY_JOB, DAY.isoformat()).success
    assert (settings.raw_dir / "flights" / f"delivery_date={DAY}").exists()
    after = read_features(settings, DAY, DAY + timedelta(days=1)).sort("flight_id")
    assert after.drop("batch_id").equals(before.drop("batch_id"))
    assert lakehouse.run(SCORE_JOB, DAY.isoformat()).success
    rescored = read_scores(settings, DAY, DAY + timedelta(days=1)).sort("flight_id")
    assert rescored["p_late"].equals(scores["p_late"])
    assert DAY in feature_days(settings, NOWCAST)

    # A day whose day before is missing is refused, not built on a shorter history.
    with pytest.raises(DayBeforeMissing, match="2013-01-22"):
        build_and_store_features(settings, date(2013, 1, 23), date(2013, 1, 24), horizons=("day_ahead",))


@pytest.mark.fast
def test_the_timetable_of_tomorrow_is_published_at_noon_new_york_time():
    # 16:59 UTC is 11:59 in New York (EST): only today's timetable is out; at 17:00, tomorrow's.
    assert published_through(datetime(2013, 1, 20, 16, 59, tzinfo=timezone.utc)) == date(2013, 1, 20)
    assert published_through(datetime(2013, 1, 20, 17, 0, tzinfo=timezone.utc)) == date(2013, 1, 21)
    every_day = lambda d: True  # noqa: E731
    never = lambda d: False  # noqa: E731
    noon = datetime(2013, 7, 4, 16, 0, tzinfo=timezone.utc)  # EDT
    assert due_days(noon, date(2013, 1, 1), date(2013, 12, 31), every_day, never) == [
        date(2013, 7, 3),
        date(2013, 7, 4),
        date(2013, 7, 5),
    ]
    assert due_days(noon, date(2013, 7, 5), date(2013, 12, 31), never, never) == [date(2013, 7, 5)]
    assert due_days(noon, date(2013, 1, 1), date(2013, 7, 4), every_day, lambda d: d < date(2013, 7, 4)) == [
        date(2013, 7, 4)
    ]
