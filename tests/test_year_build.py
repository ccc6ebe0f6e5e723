"""The full embedded year, built as `make run` builds it, read back through the analyst catalog
and an analyst's sandbox."""

import io
import zipfile

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.jobs import DAILY_JOB
from resources.catalog.publish import connect_catalog, connect_sandbox
from resources.raw.sources import embedded_data_dir
from resources.warehouse.lock import open_warehouse
from tests.conftest import FULL_YEAR_FLIGHTS


def test_year_backfills_in_one_run(year_lakehouse):
    runs = year_lakehouse.instance.get_run_records(filters=dg.RunsFilter(job_name=DAILY_JOB))
    assert len(runs) == 1
    materialized = year_lakehouse.instance.get_materialized_partitions(dg.AssetKey(["curated", "fct_flights"]))
    assert len(materialized) == 365
    records = year_lakehouse.instance.fetch_materializations(
        dg.AssetKey(["curated", "fct_flights"]), limit=1000
    ).records
    latest: dict[str, dict] = {}
    for r in records:  # newest first: each day's own record (written after the run's) wins
        latest.setdefault(r.partition_key, r.asset_materialization.metadata)
    assert len(latest) == 365 and sum(m["dagster/row_count"].value for m in latest.values()) == 336_776
    assert latest["2013-12-31"]["dagster/row_count"].value == 776  # that day's own count
    run_level = next(
        r.asset_materialization.metadata for r in records if "rows_in_run" in r.asset_materialization.metadata
    )
    # The run's window (the year) is not any day's row count: Dagster copies it onto every day.
    assert run_level["rows_in_run"].value == 336_776 and "dagster/row_count" not in run_level
    assert "flight_id" in [c.name for c in run_level["dagster/column_schema"].schema.columns]
    # Each day's own record carries the typed schema too: the UI's Columns table reads the latest.
    assert all(c.type for c in latest["2013-12-31"]["dagster/column_schema"].schema.columns)


def test_raw_to_curated_counts_reconcile(year_lakehouse):
    s = year_lakehouse.settings
    raw = pl.scan_parquet(str(s.raw_dir / "flights" / "*" / "part.parquet")).select(pl.len()).collect().item()
    quarantined = len(list((s.quarantine_dir / "flights").glob("*/part.parquet")))
    with connect_catalog(s) as con:
        n, distinct = con.execute("select count(*), count(distinct flight_id) from curated.fct_flights").fetchone()
        perf = con.execute("select sum(flights_scheduled) from curated.carrier_daily_performance").fetchone()[0]
    assert raw == n == distinct == perf == FULL_YEAR_FLIGHTS
    assert quarantined == 0


def delivered_flights() -> pl.DataFrame:
    """The embedded delivery read independently of the platform's ingestion code."""
    with zipfile.ZipFile(embedded_data_dir() / "flights.csv.zip") as zf:
        return pl.read_csv(io.BytesIO(zf.read("flights.csv")), infer_schema=False, null_values=["NA"])


def test_cancelled_and_diverted_flags_match_the_delivery(year_lakehouse):
    flights = delivered_flights()
    cancelled = flights.filter(pl.col("dep_time").is_null()).height
    diverted = flights.filter(pl.col("dep_time").is_not_null() & pl.col("arr_delay").is_null()).height
    with connect_catalog(year_lakehouse.settings) as con:
        got = con.execute(
            "select count(*) filter (where cancelled), count(*) filter (where diverted) from curated.fct_flights"
        ).fetchone()
    assert got == (cancelled, diverted) == (8255, 1175)


def test_timestamps_handle_2400_and_overnight_arrivals(year_lakehouse):
    with open_warehouse(year_lakehouse.settings) as con:  # staging is the pipeline's, not published
        # sched_dep_time values are never 2400, but dep_time is: those departures are at
        # midnight ending the day, i.e. the next calendar day 00:00 (local).
        wrong = con.execute(
            "select count(*) from curated.fct_flights f join staging.stg_nycflights__flights s using (flight_id) "
            "where s.dep_time = 2400 and (hour(f.actual_departure_local) != 0 "
            "or f.actual_departure_local::date != f.flight_date + 1)"
        ).fetchone()[0]
        n2400 = con.execute("select count(*) from staging.stg_nycflights__flights where dep_time = 2400").fetchone()[0]
        overnight = con.execute(
            "select count(*) from curated.fct_flights where scheduled_arrival_local::date > flight_date"
        ).fetchone()[0]
        utc = con.execute(
            "select scheduled_departure_utc at time zone 'UTC' from curated.fct_flights "
            "where flight_id = '20130101-UA-1545-EWR-0515'"
        ).fetchone()[0]
    assert n2400 == 29 and wrong == 0
    assert overnight > 0
    assert str(utc) == "2013-01-01 10:15:00"  # 05:15 EST = 10:15 UTC


def test_weather_is_one_row_per_origin_and_hour(year_lakehouse):
    with open_warehouse(year_lakehouse.settings) as con:  # staging is the pipeline's, not published
        total, distinct = con.execute(
            "select count(*), count(distinct (origin, observed_hour_local)) from staging.stg_nycflights__weather"
        ).fetchone()
    assert total == distinct == 26_115 - 3  # the 3 fall-back duplicates of 2013-11-03 01:00


def test_pseudonymized_key_joins_flights_to_planes(year_lakehouse):
    planes = pl.read_csv(embedded_data_dir() / "planes.csv", infer_schema=False)["tailnum"]
    expected = delivered_flights().filter(pl.col("tailnum").is_in(planes.implode())).height
    with connect_catalog(year_lakehouse.settings) as con:
        joined = con.execute(
            "select count(*) from curated.fct_flights f join curated.dim_planes p using (tailnum_key)"
        ).fetchone()[0]
        columns = con.execute("select table_schema, table_name, column_name from information_schema.columns").fetchall()
        leaked = con.execute(
            "select count(*) from curated.fct_flights where tailnum_key in ('N14228', 'N24211')"
        ).fetchone()[0]
        key_len = con.execute("select distinct length(tailnum_key) from curated.dim_planes").fetchall()
    assert joined == expected > 280_000
    assert not [c for c in columns if c[2] == "tailnum"], "clear-text tailnum reached the catalog"
    assert leaked == 0 and key_len == [(64,)]


def test_dbt_tests_are_asset_checks(year_lakehouse):
    check = dg.AssetCheckKey(dg.AssetKey(["curated", "fct_flights"]), "unique_fct_flights_flight_id")
    record = year_lakehouse.instance.event_log_storage.get_latest_asset_check_execution_by_key([check])[check]
    assert record is not None and record.status.value == "SUCCEEDED"
    warn = dg.AssetCheckKey(dg.AssetKey(["curated", "fct_flights"]), "fct_flights_dest_in_dim_airports")
    evaluation = year_lakehouse.instance.event_log_storage.get_latest_asset_check_execution_by_key([warn])[warn]
    assert evaluation is not None  # the known gap runs and is reported, not hidden
    result = evaluation.event.asset_check_evaluation
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN  # a warning, not an error
    # Every check says what it checks (dbt tests take theirs from yml, or from the test's arguments).
    specs = [s for a in year_lakehouse.defs.resolve_asset_graph().assets_defs for s in a.check_specs]
    assert len(specs) > 55 and all(s.description for s in specs)
    assert "7,602 flights" in next(s.description for s in specs if s.name == "fct_flights_dest_in_dim_airports")


def test_catalog_is_read_only_and_has_the_zones(year_lakehouse):
    with connect_catalog(year_lakehouse.settings) as con:
        schemas = {
            r[0]
            for r in con.execute(
                "select distinct table_schema from information_schema.tables where table_catalog = 'analytics'"
            ).fetchall()
        }
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("create table curated.mine as select 1")
        version = con.execute("select version, environment from catalog.version").fetchone()
        columns = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns where table_name = 'fct_flights'"
            ).fetchall()
        }
    assert {"curated", "snapshots", "ml", "monitoring", "catalog"} <= schemas
    assert not {"staging", "intermediate", "reference", "main"} & schemas  # views over raw, seeds
    assert version[1] == "dev" and version[0].startswith("v")
    assert {"flight_id", "flight_date", "carrier", "origin", "dest", "dep_delay", "arr_delay", "cancelled"} <= columns


def test_sandbox_writes_its_own_tables_and_reads_the_catalog(year_lakehouse):
    con = connect_sandbox(year_lakehouse.settings, user="pytest")
    try:
        con.execute(
            "create or replace table late_by_carrier as select carrier, avg(arrived_late::int) as late_rate "
            "from analytics.curated.fct_flights group by carrier"
        )
        assert con.execute("select count(*) from late_by_carrier").fetchone()[0] == 16
        with pytest.raises(duckdb.Error):
            con.execute("create table analytics.curated.mine as select 1")
    finally:
        con.close()
    assert (year_lakehouse.settings.sandbox_dir / "pytest.duckdb").exists()
