"""Each daily partition's own row count, for the Dagster record of that partition.

A single-run backfill builds many days in one dbt invocation; Dagster would otherwise copy the
run's figure to every day. The day of a row is its delivery date where the model keeps it
(staging), else the flight date (curated: a flight is delivered on its scheduled day).
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

DAY_COLUMNS = ("delivery_date", "flight_date")


def rows_per_day(
    con: duckdb.DuckDBPyConnection, schema: str, name: str, columns: list[str], start: str, end: str
) -> dict[str, int] | None:
    """{YYYY-MM-DD: rows} for every day of [start, end) (0 for a day without rows), or None when
    the relation has no day column."""
    column = next((c for c in DAY_COLUMNS if c in columns), None)
    if column is None:
        return None
    found = dict(
        con.execute(
            f'select "{column}"::date::varchar, count(*) from "{schema}"."{name}" '
            f'where "{column}" >= ?::date and "{column}" < ?::date group by 1',
            [start, end],
        ).fetchall()
    )
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days)]
    return {d: found.get(d, 0) for d in days}
