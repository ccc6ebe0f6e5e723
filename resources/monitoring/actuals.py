"""The label and when it is known.

Actuals: a flight's outcome is final one day after its scheduled date (arrivals after midnight,
diversions resolved). Quality for a month is computed only once every scored day in it is at least
``ACTUALS_LAG_DAYS`` old relative to the clock (``as_of``, today unless a run sets it).
"""

from __future__ import annotations

from datetime import date, timedelta

ACTUALS_LAG_DAYS = 1
TARGET = "is_late"


def missing_actuals(days: list[date], as_of: date) -> list[date]:
    return [d for d in days if d + timedelta(days=ACTUALS_LAG_DAYS) > as_of]
