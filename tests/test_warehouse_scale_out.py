"""The warehouse DuckLake scaled out by configuration alone: its metadata in PostgreSQL
(LAKEHOUSE_WAREHOUSE_CATALOG=postgres:...) and its data files on S3 (an s3:// root, through
httpfs), with two writers that share nothing local (separate state folders, standing in for two
machines) running the daily build of different days at the same time. PostgreSQL and the S3
server (moto) run on 127.0.0.1, started by the fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import psycopg2

from resources.core.duckdb_connect import attach_ducklake, connect
from resources.core.settings import Settings
from resources.warehouse.lock import open_warehouse
from tests.conftest import PASSWORD, local_s3_server

REPO_ROOT = Path(__file__).resolve().parent.parent
ROOT = "s3://lake/team"
KEY = "ab" * 32  # one pseudonym key for both machines, as production gives it (LAKEHOUSE_PSEUDONYM_KEY)
# Columns that name the run or the key, not the flight: another run on another machine differs there.
PER_RUN = {"tailnum_key", "batch_id", "_batch_id", "ingested_at", "_ingested_at", "source_file", "_source_file"}
HALVES = [("2013-01-02", "2013-01-15"), ("2013-01-16", "2013-01-31")]

# One machine's run: the definitions `make dev` loads, on the s3:// root, in a process of its own.
WRITER = """
import sys
import dagster as dg
from resources.core.dagster_private import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from assets.definitions import build_definitions
from assets.jobs import DAILY_JOB, REFERENCE_JOB
from resources.core.lakehouse_resource import LakehouseResource

job, start, end = sys.argv[1:4]
defs = build_definitions(LakehouseResource(root=sys.argv[4]))
tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end} if start else {}
instance = dg.DagsterInstance.ephemeral()
result = defs.resolve_job_def({"daily": DAILY_JOB, "reference": REFERENCE_JOB}[job]).execute_in_process(
    instance=instance, tags=tags, raise_on_error=False)
for entry in instance.all_logs(result.run_id):
    if "conflict" in entry.user_message:
        print("retried:", entry.user_message, flush=True)
for event in result.all_events:
    if event.is_step_failure:
        print("failed:", event.step_key, event.step_failure_data.error.message[-3000:], flush=True)
sys.exit(0 if result.success else 1)
"""


def _writer(environ: dict[str, str], job: str, window: tuple[str, str] | None = None) -> subprocess.Popen:
    start, end = window or ("", "")
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, job, start, end, ROOT],
        cwd=REPO_ROOT,
        env={**os.environ, **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finished(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=1800)
    assert proc.returncode == 0, out[-6000:]
    return out


def _january(con) -> tuple[dict, pl.DataFrame]:
    days = dict(
        con.execute(
            "select flight_date::varchar, count(*) from curated.fct_flights "
            "where flight_date < date '2013-02-01' group by 1"
        ).fetchall()
    )
    rows = pl.from_arrow(
        con.sql(
            "select * from curated.fct_flights where flight_date < date '2013-02-01' order by flight_id"
        ).fetch_arrow_table()
    )
    return days, rows.drop([c for c in rows.columns if c in PER_RUN])


def _lake_database(postgres: dict) -> str:
    """A database of its own for the lake's catalog on the test's PostgreSQL; its DuckLake URL."""
    con = psycopg2.connect(
        host=postgres["DAGSTER_PG_HOST"],
        port=postgres["DAGSTER_PG_PORT"],
        user="dagster",
        password=PASSWORD,
        dbname="postgres",
    )
    con.autocommit = True
    con.cursor().execute("create database lake")
    con.close()
    return (
        f"postgres:dbname=lake host={postgres['DAGSTER_PG_HOST']} port={postgres['DAGSTER_PG_PORT']} "
        f"user=dagster password={PASSWORD}"
    )


def test_two_writers_on_a_postgresql_catalog_with_data_on_s3_build_what_one_local_writer_builds(
    ml_lakehouse, postgres, tmp_path, monkeypatch
):
    catalog = _lake_database(postgres)
    with local_s3_server() as aws:
        import s3fs

        s3fs.S3FileSystem(
            client_kwargs={"endpoint_url": aws["AWS_ENDPOINT_URL"]},
            key="local",
            secret="local",
            skip_instance_cache=True,
        ).mkdir("lake")
        machines = [
            {
                **aws,
                "LAKEHOUSE_STATE_DIR": str(tmp_path / name),
                "LAKEHOUSE_WAREHOUSE_CATALOG": catalog,
                "LAKEHOUSE_PSEUDONYM_KEY": KEY,
                "DO_NOT_TRACK": "1",
            }
            for name in ("a", "b")
        ]
        _finished(_writer(machines[0], "reference"))
        _finished(_writer(machines[0], "daily", ("2013-01-01", "2013-01-01")))  # the tables exist
        # Both halves of January at once, one per machine: the same tables, different days.
        both = [_writer(env, "daily", window) for env, window in zip(machines, HALVES)]
        logs = [_finished(proc) for proc in both]

        for k, v in machines[1].items():  # read as machine b
            monkeypatch.setenv(k, v)
        b = Settings.from_env({**os.environ, "LAKEHOUSE_ROOT": ROOT})
        assert b.warehouse_metadata == catalog and b.local_root == tmp_path / "b"
        with open_warehouse(b) as lake:
            remote_days, remote = _january(lake)
        state_files = [p for name in ("a", "b") for p in (tmp_path / name).rglob("*.parquet")]
    with open_warehouse(ml_lakehouse.settings) as local:
        local_days, expected = _january(local)
    assert len(remote_days) == 31 and remote_days == local_days  # every day once: nothing lost, nothing twice
    assert remote.height == 27_004
    assert remote.columns == expected.columns
    for name in remote.columns:  # column by column, so a failure names the column
        assert remote[name].equals(expected[name]), name
    assert not state_files  # no table data on either machine: it is all in the store
    print("\n".join(logs))  # the conflicts that were built again, if any (pytest -s shows them)


def test_an_ml_write_that_loses_a_commit_race_to_another_machine_is_made_again(postgres, tmp_path):
    """With the catalog in PostgreSQL, a writer on another machine is not behind this machine's
    lock: it commits ``ml.<table>`` between our transaction's start and its commit, DuckLake refuses
    our commit, and the write is made again whole on the new snapshot."""
    from datetime import date

    from resources.ml import lake

    catalog = _lake_database(postgres)
    here = Settings.from_env({"LAKEHOUSE_ROOT": str(tmp_path / "lake"), "LAKEHOUSE_WAREHOUSE_CATALOG": catalog})
    d1, d2 = date(2013, 1, 1), date(2013, 1, 2)

    def rows(d, n, x):
        return pl.DataFrame({"flight_id": [f"{d}-{i}" for i in range(n)], "flight_date": [d] * n, "x": [x] * n})

    lake.write_lake_days(here, "t", {d1: rows(d1, 3, 1.0), d2: rows(d2, 3, 1.0)})
    raced, attempts = [], []

    def the_other_machine_commits_first(_con, _days):
        attempts.append(1)
        if not raced:  # its own connection to the same catalog and files, and no lock of this machine
            raced.append(True)
            with connect() as other:
                attach_ducklake(other, catalog, here.warehouse_data, "lake")
                other.execute("delete from lake.ml.t where flight_date = ?", [d2])
                other.execute("insert into lake.ml.t values (?, ?, 2.0)", [f"{d2}-0", d2])

    lake.write_lake_days(here, "t", {d1: rows(d1, 2, 4.0)}, before_replace=the_other_machine_commits_first)
    assert raced == [True] and len(attempts) == 2  # refused once, made again
    assert lake.read_lake_days(here, "t", d1, d2)["x"].to_list() == [4.0, 4.0]
    assert lake.read_lake_days(here, "t", d2)["x"].to_list() == [2.0]  # the other machine's write stands
    assert lake.lake_days(here, "t") == [d1, d2]
