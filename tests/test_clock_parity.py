"""The service's local-to-UTC rule equals the SQL's (DuckDB ``timezone(zone, ts)``, macro local_to_utc)
for every minute of both 2013 DST nights, in the hour that happens twice and the hour that does not
exist included, so a flight posted to the service gets the UTC instants batch gives it."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb
import pytest

from resources.core.clock import local_to_utc

pytestmark = pytest.mark.fast  # `make test-fast`: no Dagster run, no dbt build

ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "America/Phoenix",
)
NIGHTS = ("2013-03-10", "2013-11-03")  # clocks spring forward, fall back (00:00-04:00 local)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _duckdb_minutes() -> list[tuple[str, datetime, int]]:
    con = duckdb.connect()
    try:
        return con.execute(
            """
            select zone, ts, epoch_us(timezone(zone, ts))
            from unnest(?::varchar[]) as z(zone),
                 unnest(?::date[]) as n(night),
                 generate_series(night::timestamp, night::timestamp + interval 4 hour, interval 1 minute) as g(ts)
            order by all""",
            [list(ZONES), list(NIGHTS)],
        ).fetchall()
    finally:
        con.close()


def test_local_to_utc_equals_duckdb_timezone_for_every_minute_of_both_dst_nights():
    rows = _duckdb_minutes()
    assert len(rows) == len(ZONES) * len(NIGHTS) * 241
    differ = [
        (zone, ts, EPOCH + timedelta(microseconds=us), local_to_utc(ts, zone))
        for zone, ts, us in rows
        if local_to_utc(ts, zone) != EPOCH + timedelta(microseconds=us)
    ]
    assert not differ, differ[:10]
    # The grid holds the minutes a plain zoneinfo reading (fold=0, daylight) gets wrong: the
    # fall-back hour 01:00-01:59 in the four zones that observe DST.
    naive = [ts.replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc) for zone, ts, _ in rows]
    assert sum(n != EPOCH + timedelta(microseconds=us) for n, (_, _, us) in zip(naive, rows)) == 4 * 60


def test_the_two_hours_the_dbt_unit_test_names_and_a_null_zone():
    # dbt_project/models/intermediate/_intermediate__unit_tests.yml, on the service's side.
    assert local_to_utc(datetime(2013, 11, 3, 1, 30), "America/New_York") == datetime(
        2013, 11, 3, 6, 30, tzinfo=timezone.utc
    )
    assert local_to_utc(datetime(2013, 3, 10, 2, 30), "America/New_York") == datetime(
        2013, 3, 10, 7, 30, tzinfo=timezone.utc
    )
    assert local_to_utc(datetime(2013, 3, 10, 2, 30), None) is None
