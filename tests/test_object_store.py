"""dbt over object storage: the raw zone on a local S3 server (moto's server mode on 127.0.0.1,
started and stopped by the fixture), read by the DuckDB build through s3fs, equal to the build
from the local raw zone."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest

from resources.core.duckdb_connect import WAREHOUSE_ALIAS, attach_ducklake, connect
from resources.core.object_store import raw_url
from tests.conftest import local_s3_server, upload_raw_zone

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.fast
@pytest.mark.parametrize(
    "bad", ["/data/raw", "s3://b/raw/", "s3://b/r'aw", "s3://b/$(touch x)'", "gs://b/raw", " s3://b/raw", "s3://b/r aw"]
)
def test_a_raw_url_that_is_not_a_plain_s3_url_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="LAKEHOUSE_RAW_URL"):
        raw_url({"LAKEHOUSE_RAW_URL": bad})


@pytest.mark.fast
def test_no_raw_url_means_the_local_raw_zone():
    assert raw_url({}) is None and raw_url({"LAKEHOUSE_RAW_URL": "raw"}) is None
    assert raw_url({"LAKEHOUSE_RAW_URL": "s3://bucket/team/raw"}) == "s3://bucket/team/raw"


@pytest.fixture(scope="module")
def s3_server():
    with local_s3_server() as aws_env:
        yield aws_env


def _dbt_build(settings, warehouse: Path, target: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    warehouse.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **settings.dbt_env(),
        **extra_env,
        "LAKEHOUSE_WAREHOUSE_CATALOG": f"sqlite:{warehouse / 'lake.sqlite'}",
        "LAKEHOUSE_WAREHOUSE_DATA": str(warehouse / "data") + "/",
        "LAKEHOUSE_WINDOW_START": "2013-01-01",
        "LAKEHOUSE_WINDOW_END": "2013-02-01",
        "DO_NOT_TRACK": "1",
    }
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "build",
            "--exclude-resource-type",
            "unit_test",
            "--project-dir",
            "dbt_project",
            "--profiles-dir",
            "dbt_project",
            "--target-path",
            str(target),
            "--log-path",
            str(target),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@contextmanager
def _lake(warehouse: Path):
    with connect() as con:
        attach_ducklake(con, f"sqlite:{warehouse / 'lake.sqlite'}", warehouse / "data", WAREHOUSE_ALIAS, read_only=True)
        con.execute(f"use {WAREHOUSE_ALIAS}")
        yield con


def _fct(warehouse: Path) -> pl.DataFrame:
    with _lake(warehouse) as con:
        return pl.from_arrow(con.sql("select * from curated.fct_flights order by flight_id").fetch_arrow_table())


def test_the_dbt_build_reads_the_raw_zone_from_s3_and_equals_the_local_build(ml_lakehouse, s3_server, tmp_path):
    url = upload_raw_zone(s3_server, ml_lakehouse.settings.raw_dir, "lakehouse-test", "team")

    local = _dbt_build(ml_lakehouse.settings, tmp_path / "local", tmp_path / "t-local", {})
    assert local.returncode == 0, local.stdout[-3000:]
    # The local raw zone is moved away: the S3 build cannot read it by accident.
    parked = ml_lakehouse.settings.raw_dir.with_name("raw.parked")
    os.rename(ml_lakehouse.settings.raw_dir, parked)
    try:
        remote = _dbt_build(
            ml_lakehouse.settings, tmp_path / "s3", tmp_path / "t-s3", {**s3_server, "LAKEHOUSE_RAW_URL": url}
        )
    finally:
        os.rename(parked, ml_lakehouse.settings.raw_dir)
    assert remote.returncode == 0, remote.stdout[-3000:]
    assert "PASS=" in remote.stdout and "ERROR=0" in remote.stdout

    a, b = _fct(tmp_path / "local"), _fct(tmp_path / "s3")
    assert a.height == b.height == 27_004
    assert a.hash_rows().sum() == b.hash_rows().sum()  # the checksum of every value
    assert a.equals(b)
    with _lake(tmp_path / "s3") as con:
        views = con.execute(
            f"select sql from __ducklake_metadata_{WAREHOUSE_ALIAS}.ducklake_view "
            "where view_name = 'stg_nycflights__flights' and end_snapshot is null"
        ).fetchone()[0]
    assert url in views  # the staging view reads the store, not a local path
