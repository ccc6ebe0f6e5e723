"""Day-ahead scores exist before the day's flights are delivered, and delivery changes nothing."""

from datetime import date, datetime, timezone

import polars as pl

from assets.jobs import DAILY_JOB, DAY_AHEAD_JOB, PROMOTE_JOB, REFERENCE_JOB, SCORE_JOB, TRAIN_JOB
from resources.ml.availability import NOWCAST
from resources.ml.store import day_file, features_dir, scores_dir
from tests.conftest import APPROVAL, promote_config

DAY = date(2013, 1, 21)
SPLIT = {"train_start": "2013-01-01", "validation_start": "2013-01-11", "test_start": "2013-01-16",
         "test_end": "2013-01-21"}


def test_a_day_is_scored_from_its_timetable_before_its_flights_arrive(lakehouse):
    settings = lakehouse.settings
    assert lakehouse.run(REFERENCE_JOB).success
    assert lakehouse.run(DAILY_JOB, "2013-01-01", "2013-01-20").success
    assert lakehouse.run(TRAIN_JOB, run_config={"ops": {"ml__model_candidate": {"config": SPLIT}}}).success
    assert lakehouse.run(PROMOTE_JOB, run_config=promote_config(**APPROVAL)).success

    # The timetable of Jan 21 lands (noon on Jan 20): features and scores follow, no flight delivered.
    assert lakehouse.run(DAY_AHEAD_JOB, DAY.isoformat()).success
    assert not (settings.raw_dir / "flights" / f"delivery_date={DAY}").exists()
    assert not day_file(features_dir(settings, NOWCAST), DAY).exists()  # the nowcast needs the day's flights
    before = pl.read_parquet(day_file(features_dir(settings), DAY)).sort("flight_id")
    scores = pl.read_parquet(day_file(scores_dir(settings), DAY)).sort("flight_id")
    assert scores.height == before.height > 800 and set(scores["horizon"]) == {"day_ahead"}
    midnight_utc = datetime(2013, 1, 21, 5, tzinfo=timezone.utc)  # 00:00 in New York (EST)
    assert (scores["as_of"] < midnight_utc).all() and (scores["scored_at"] > midnight_utc).all()

    # Then the day's flights (with their actuals) arrive and everything is rebuilt from them: the
    # day-ahead features and scores do not move, since they never read what the day recorded.
    assert lakehouse.run(DAILY_JOB, DAY.isoformat()).success
    assert (settings.raw_dir / "flights" / f"delivery_date={DAY}").exists()
    after = pl.read_parquet(day_file(features_dir(settings), DAY)).sort("flight_id")
    assert after.drop("batch_id").equals(before.drop("batch_id"))
    assert lakehouse.run(SCORE_JOB, DAY.isoformat()).success
    rescored = pl.read_parquet(day_file(scores_dir(settings), DAY)).sort("flight_id")
    assert rescored["p_late"].equals(scores["p_late"])
    assert day_file(features_dir(settings, NOWCAST), DAY).exists()
