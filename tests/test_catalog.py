"""The analyst catalog under a running pipeline: sessions, time travel, column descriptions (its
read-only and sandbox checks on the whole year are in test_year_build, which builds the year)."""

import subprocess
import sys
import textwrap
import time

import pytest

from assets.jobs import DAILY_JOB, PUBLISH_JOB
from resources.catalog.publish import connect_catalog
from resources.core.settings import DBT_PROJECT_DIR

READER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from resources.catalog.publish import connect_catalog
    from resources.core.settings import Settings
    root, stop = sys.argv[1], sys.argv[2]
    con = connect_catalog(Settings(root=Path(root), env="dev"))
    seen, errors, queries = set(), [], 0
    print("ready", flush=True)
    import os
    while not os.path.exists(stop):
        try:
            seen.add(con.execute("select count(*) from curated.fct_flights").fetchone()[0])
            queries += 1
        except Exception as exc:
            errors.append(repr(exc))
        time.sleep(0.02)
    print(queries, sorted(seen), errors, flush=True)
    sys.exit(1 if errors else 0)
""")


def test_open_analyst_session_neither_blocks_nor_breaks_a_run(lakehouse, tmp_path):
    lakehouse.build("2013-01-02")
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(lakehouse.settings.root), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "ready"
        # While the analyst holds the catalog open and queries it: ingest and build another
        # day, then republish the catalog.
        assert lakehouse.run(DAILY_JOB, "2013-01-03").success
        assert lakehouse.run(PUBLISH_JOB).success
        time.sleep(0.3)
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err + out
    queries, rest = out.strip().splitlines()[-1].split(" ", 1)
    assert int(queries) > 10
    assert rest.startswith("[943] []")  # one consistent version throughout, no errors
    with connect_catalog(lakehouse.settings) as con:  # a new session sees the new version
        assert con.execute("select count(*) from curated.fct_flights").fetchone()[0] == 943 + 914
    # Each dbt invocation's own target folder is gone once its run read it (a disk filled with them).
    runs = [r.run_id[:7] for r in lakehouse.instance.get_runs()]
    left = [p.name for p in (DBT_PROJECT_DIR / "target").iterdir() if p.name.split("-")[1:2] in [[r] for r in runs]]
    assert len(runs) >= 3 and left == [], left


def test_catalog_columns_lets_analysts_search_every_column_with_its_meaning(ml_lakehouse):
    with connect_catalog(ml_lakehouse.settings) as con:
        desc = dict(
            ((s, t, c), d)
            for s, t, c, d in con.execute(
                "select schema_name, table_name, column_name, description from catalog.columns"
            ).fetchall()
        )
        types = dict(
            con.execute(
                "select column_name, data_type from catalog.columns "
                "where schema_name = 'curated' and table_name = 'fct_flights'"
            ).fetchall()
        )
        hits = con.execute("select count(*) from catalog.columns where description ilike '%pseudonym%'").fetchone()[0]
        listed = con.execute("select count(*) from catalog.columns").fetchone()[0]
        actual = con.execute(
            "select count(*) from information_schema.columns where table_schema <> 'catalog' "
            "and table_catalog = current_database()"
        ).fetchone()[0]
    assert desc[("curated", "fct_flights", "flight_id")] == "Unique flight key: YYYYMMDD-carrier-flight-origin-HHMM."
    assert types["flight_date"] == "DATE"
    assert desc[("ml", "flight_features", "origin")] == "Departure airport (EWR, JFK, LGA)."
    assert hits > 0 and listed == actual  # every queryable column is listed, searchable by meaning


def test_time_travel_opens_any_kept_version_by_name_or_time_and_says_what_changed(lakehouse, monkeypatch):
    from datetime import timedelta

    from resources.catalog.versions import VersionNotKept, connect_catalog_as_of, published_at

    monkeypatch.setenv("LAKEHOUSE_CATALOG_KEEP", "2")

    def current():
        with connect_catalog(lakehouse.settings) as con:
            return con.execute("select version from catalog.version").fetchone()[0]

    lakehouse.build("2013-01-01")
    first = current()
    assert lakehouse.run(DAILY_JOB, "2013-01-02").success
    assert lakehouse.run(PUBLISH_JOB).success
    second = current()
    with connect_catalog(lakehouse.settings) as con:
        rows = con.execute(
            "select version, tables_changed, changes::varchar, code_version from catalog.versions order by version"
        ).fetchall()
        now_flights = con.execute("select count(*) from curated.fct_flights").fetchone()[0]
    assert [r[0] for r in rows] == [first, second]
    assert rows[1][1] >= 1 and '"table": "curated.fct_flights"' in rows[1][2] and rows[1][3]
    with connect_catalog_as_of(lakehouse.settings, version=first) as con:
        then_flights = con.execute("select count(*) from curated.fct_flights").fetchone()[0]
        assert con.execute("select version from catalog.version").fetchone()[0] == first
    assert 0 < then_flights < now_flights
    between = published_at(second) - timedelta(microseconds=1)
    with connect_catalog_as_of(lakehouse.settings, at=between) as con:
        assert con.execute("select version from catalog.version").fetchone()[0] == first
    # Retention (count 2 here): a third publish lets the first go; asking for it names what is kept.
    assert lakehouse.run(PUBLISH_JOB).success
    with pytest.raises(VersionNotKept, match=f"{first}.*not kept.*kept: {second}"):
        connect_catalog_as_of(lakehouse.settings, version=first)
    with connect_catalog(lakehouse.settings) as con:  # the history still lists it
        assert con.execute("select count(*) from catalog.versions").fetchone()[0] == 3


def test_every_curated_column_is_described(ml_lakehouse):
    """The catalog is searchable by meaning: no curated column (dims, facts) or snapshot column without one."""
    with connect_catalog(ml_lakehouse.settings) as con:
        bare = con.execute(
            "select table_name || '.' || column_name from catalog.columns "
            "where schema_name in ('curated', 'snapshots') and description = '' order by 1"
        ).fetchall()
    assert bare == []
