"""The same dbt project on Spark (dbt-spark, session method, a local pyspark on Java 17): January
built through curated from the raw zone of a real lakehouse, and fct_flights compared row for row
and value for value with the DuckDB build of the same deliveries."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from resources.core.pseudonym import load_key, pseudonymize
from resources.warehouse.lock import open_warehouse
from resources.warehouse.spark_engine import (
    SPARK_BUILD,
    MovedSparkDir,
    claim_spark_dir,
    pseudonymize_series,
    session_config,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.fast
def test_the_spark_udf_gives_the_duckdb_pseudonyms_and_keeps_nulls():
    key = b"k" * 32
    values = pd.Series(["N14228", None, float("nan"), "N'; drop table x; --", ""], dtype=object)
    out = pseudonymize_series(values, key).tolist()
    assert out == [
        pseudonymize("N14228", key),
        None,
        None,
        pseudonymize("N'; drop table x; --", key),
        pseudonymize("", key),
    ]


@pytest.mark.fast
def test_the_session_runs_in_utc_inside_the_lakehouse(tmp_path):
    from resources.core.settings import Settings

    config = session_config(Settings(root=tmp_path), {})
    assert config["spark.sql.session.timeZone"] == "UTC"
    assert config["spark.sql.warehouse.dir"] == str(tmp_path / "spark" / "warehouse")
    assert config["spark.master"] == "local[2]"
    assert (
        session_config(Settings(root=tmp_path), {"LAKEHOUSE_SPARK_MASTER": "spark://h:7077"})["spark.master"]
        == "spark://h:7077"
    )


@pytest.mark.fast
def test_a_moved_spark_folder_is_refused_with_both_places_named(tmp_path):
    home = tmp_path / "lakehouse" / "spark"
    claim_spark_dir(home)
    claim_spark_dir(home)  # the same place again is fine
    shutil.copytree(home, tmp_path / "copy" / "spark")
    with pytest.raises(MovedSparkDir, match="was made at .*lakehouse/spark.*Remove"):
        claim_spark_dir(tmp_path / "copy" / "spark")


def test_make_dbt_spark_passes_args_to_dbt_never_to_a_shell(ml_lakehouse, tmp_path):
    marker = tmp_path / "pwned"
    hostile = f'ls --select "x" --quiet; $(touch {marker}) `touch {marker}`'
    env = {
        **os.environ,
        "LAKEHOUSE_ROOT": str(ml_lakehouse.settings.root),
        "LAKEHOUSE_SPARK_DIR": str(tmp_path / "spark"),
    }
    done = subprocess.run(
        ["make", "-s", "dbt-spark", f"ARGS={hostile}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0 and "No such option" in done.stderr  # dbt read '--quiet;' as its own option
    assert not marker.exists()


def _spark(root: Path, spark_dir: Path, args: list[str], window: tuple[str, str]) -> subprocess.CompletedProcess:
    # A process of its own: the engine sets LAKEHOUSE_ENGINE=spark and starts a JVM.
    env = {
        **os.environ,
        "LAKEHOUSE_ROOT": str(root),
        "LAKEHOUSE_SPARK_DIR": str(spark_dir),
        "LAKEHOUSE_WINDOW_START": window[0],
        "LAKEHOUSE_WINDOW_END": window[1],
        "DO_NOT_TRACK": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "resources.warehouse.spark_engine", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _comparable(df: pl.DataFrame) -> pl.DataFrame:
    """Both engines' timestamps as naive UTC microseconds (DuckDB: TIMESTAMPTZ and TIMESTAMP; Spark:
    parquet INT96 in a UTC session), the lineage row number as Int64, rows by flight id."""
    cols = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if dtype.time_zone else col
            col = col.dt.cast_time_unit("us")
        elif dtype.is_integer():
            col = col.cast(pl.Int64)
        cols.append(col)
    return df.select(cols).sort("flight_id")


def _spark_table(spark_dir: Path, schema: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(spark_dir / "warehouse" / f"{schema}.db" / name / "**" / "*.parquet", hive_partitioning=True)


@pytest.fixture(scope="module")
def spark_january(ml_lakehouse, tmp_path_factory):
    if not shutil.which("java"):
        pytest.fail("Java is missing: .ci/run installs Debian's default-jre-headless")
    spark_dir = tmp_path_factory.mktemp("spark")
    result = _spark(ml_lakehouse.settings.root, spark_dir, SPARK_BUILD, ("2013-01-01", "2013-02-01"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return ml_lakehouse, spark_dir, result


def test_fct_flights_on_spark_equals_the_duckdb_build_row_for_row(spark_january):
    lh, spark_dir, result = spark_january
    assert "Completed successfully" in result.stdout
    with open_warehouse(lh.settings) as con:
        duck = pl.from_arrow(
            con.sql("select * from curated.fct_flights where flight_date < date '2013-02-01'").to_arrow_table()
        )
    spark = _spark_table(spark_dir, "curated", "fct_flights")
    assert duck.height == 27_004  # the January deliveries
    assert sorted(spark.columns) == sorted(duck.columns)
    duck, spark = _comparable(duck), _comparable(spark.select(duck.columns))
    assert spark["flight_id"].to_list() == duck["flight_id"].to_list()
    for name in duck.columns:  # column by column, so a failure names the column
        assert spark[name].equals(duck[name]), name
    # The same keyed pseudonyms on both engines, and the key in none of dbt's files on Spark.
    assert spark["tailnum_key"].null_count() < spark.height
    key = load_key(lh.settings)
    for path in (spark_dir / "dbt-target").rglob("*"):
        if path.is_file():
            assert key.hex() not in path.read_text(errors="ignore"), path


def test_spark_ran_the_projects_tests_and_the_dimensions(spark_january):
    _, spark_dir, result = spark_january
    import json

    run = json.loads((spark_dir / "dbt-target" / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in run["results"]}
    tests = [s for uid, s in statuses.items() if uid.startswith(("test.", "unit_test."))]
    assert len(tests) >= 30 and set(tests) == {"pass"}, statuses
    # The clock rules' unit tests, the DST one included (macros/dialect.sql, local_to_utc).
    assert sum(uid.startswith("unit_test.") for uid in statuses) == 4
    assert "test.lakehouse.assert_no_flight_lost_raw_to_curated" in statuses
    dates = _spark_table(spark_dir, "curated", "dim_dates")
    assert dates.height == 730 and dates.filter(pl.col("is_holiday")).height == 20
    new_year = dates.filter(pl.col("date_day") == pl.date(2013, 1, 1)).row(0, named=True)
    assert (new_year["day_of_week"], new_year["day_name"], new_year["holiday_name"]) == (2, "Tuesday", "New Year's Day")


def test_a_window_rebuilt_on_spark_replaces_its_days_and_empties_a_day_delivered_empty(spark_january, tmp_path):
    """Jan 10-11 rebuilt from a copy of the raw zone in which Jan 11 has no flights: Jan 10 is
    replaced (not duplicated), Jan 11 is emptied (on DuckDB the pre-hook's DELETE does this; on
    Spark the pre-hook drops the window's partitions), the other days are untouched."""
    lh, spark_dir, _ = spark_january
    before = _spark_table(spark_dir, "curated", "fct_flights")
    per_day = dict(before.group_by("flight_date").len().iter_rows())
    root = tmp_path / "lakehouse"
    shutil.copytree(lh.settings.raw_dir, root / "raw")
    shutil.copytree(lh.settings.secrets_dir, tmp_path / "lakehouse.secrets")
    shutil.rmtree(root / "raw" / "flights" / "delivery_date=2013-01-11")
    # The daily models, as the daily asset selects them (on Spark staging and intermediate are
    # tables, so they are rebuilt with it rather than read through as views).
    result = _spark(
        root,
        spark_dir,
        ["build", "--select", "tag:daily", "--indirect-selection", "cautious"],
        ("2013-01-10", "2013-01-12"),
    )
    assert result.returncode == 0, "\n".join(line[:300] for line in result.stdout.splitlines()[-25:])
    after = _spark_table(spark_dir, "curated", "fct_flights")
    after_per_day = dict(after.group_by("flight_date").len().iter_rows())
    jan11 = dt.date(2013, 1, 11)
    assert after_per_day.get(jan11) is None and per_day[jan11] > 900
    assert after_per_day == {d: n for d, n in per_day.items() if d != jan11}
    assert after["flight_id"].n_unique() == after.height == before.height - per_day[jan11]
