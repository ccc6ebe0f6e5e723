"""The windows a candidate trains on follow the data: a closed month moves them by a month."""

from datetime import date

import pytest

from assets.ml.model import TrainingConfig
from resources.ml.model.training import TimeSplit, latest_split

pytestmark = pytest.mark.fast


def test_the_embedded_year_gives_the_documented_split_and_a_closed_month_moves_it():
    year = latest_split(date(2013, 1, 1), date(2013, 12, 31))
    assert year == TimeSplit(date(2013, 1, 1), date(2013, 9, 1), date(2013, 11, 1), date(2014, 1, 1))
    # December not complete yet: its days are neither tested nor trained on.
    assert latest_split(date(2013, 1, 1), date(2013, 12, 30)).test_end == date(2013, 12, 1)
    # January 2014 closed: everything moves a month, across the year's end.
    assert latest_split(date(2013, 1, 1), date(2014, 1, 31)) == TimeSplit(
        date(2013, 1, 1), date(2013, 10, 1), date(2013, 12, 1), date(2014, 2, 1)
    )


def test_given_windows_are_used_as_given_and_half_given_ones_refused():
    given = TrainingConfig(
        train_start="2013-01-01", validation_start="2013-02-01", test_start="2013-02-15", test_end="2013-03-01"
    )
    assert given.split(settings=None).test_start == date(2013, 2, 15)
    with pytest.raises(ValueError, match="all four"):
        TrainingConfig(test_start="2013-02-15").split(settings=None)
