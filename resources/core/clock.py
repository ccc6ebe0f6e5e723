"""Local wall-clock time to UTC, by the rule the SQL uses (dbt_project/macros/dialect.sql, local_to_utc).

The service computes a request flight's UTC instants in Python; batch computes them in DuckDB with
``timezone(zone, ts)``. Both must read the two DST nights' odd hours the same way, or a flight
posted to the service gets other rotation features than batch gives it (tests/test_clock_parity.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo


def local_to_utc(local: datetime, zone: str | None) -> datetime | None:
    """The UTC instant of a naive local time in an IANA zone (null zone -> None)."""
    if zone is None:
        return None
    # DuckDB (ICU) takes the later instant of the two readings: standard time in the hour that
    # happens twice (fold=1), and the pre-gap offset for a time that does not exist (fold=0).
    return max(local.replace(tzinfo=ZoneInfo(zone), fold=fold).astimezone(timezone.utc) for fold in (0, 1))
