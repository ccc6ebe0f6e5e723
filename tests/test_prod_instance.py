"""The production instance (deploy/prod/dagster.yaml) on a real PostgreSQL: started on 127.0.0.1 by
the fixture from the machine's PostgreSQL binaries (Debian's postgresql package; .ci/run installs
it), a partition backfill run through it, then stopped and removed."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from assets.bootstrap import backfill_all, in_process_workspace, split_at_gate, synchronous_instance
from tests.conftest import three_day_home

REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pytest-only"


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the package's own user when we are root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def postgres():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    import psycopg2

    work = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    (work / "pw").write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
        shutil.chown(work / "pw", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = work / "data"
    subprocess.run(_as_postgres([initdb, "-D", str(data), "-U", "dagster", "--auth=scram-sha-256",
                                 f"--pwfile={work / 'pw'}", "-E", "UTF8", "--no-instructions"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-l", str(work / "log"), "-w", "start",
                                 "-o", f"-h 127.0.0.1 -p {port} -k {work}"]), check=True, capture_output=True)
    try:
        con = psycopg2.connect(host="127.0.0.1", port=port, user="dagster", password=PASSWORD, dbname="postgres")
        con.autocommit = True
        con.cursor().execute("create database dagster")
        con.close()
        yield {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(port), "DAGSTER_PG_USER": "dagster",
               "DAGSTER_PG_PASSWORD": PASSWORD, "DAGSTER_PG_DB": "dagster"}
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def test_a_partition_backfill_runs_through_the_production_instance_on_postgres(postgres, tmp_path, monkeypatch):
    import psycopg2
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    for name, value in postgres.items():
        monkeypatch.setenv(name, value)
    home = three_day_home(tmp_path, monkeypatch, REPO_ROOT / "deploy" / "prod" / "dagster.yaml")
    instance = synchronous_instance(str(home))
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert instance.run_monitoring_enabled
    with in_process_workspace(instance) as context:
        before, _ = split_at_gate(context.create_request_context().asset_graph)
        keys = [k for k in before if k.path[0] in ("raw", "staging")]
        assert backfill_all(context, keys, "prod instance test", log=lambda *_: None)
    # What the instance recorded is in PostgreSQL, where another machine's webserver would read it.
    con = psycopg2.connect(host="127.0.0.1", port=int(postgres["DAGSTER_PG_PORT"]), user="dagster",
                           password=PASSWORD, dbname="dagster")
    with con, con.cursor() as cur:
        cur.execute("select count(*), count(*) filter (where status = 'SUCCESS') from runs")
        runs, succeeded = cur.fetchone()
        cur.execute("select count(*) from bulk_actions")
        backfills = cur.fetchone()[0]
        cur.execute("select count(distinct partition) from event_logs where dagster_event_type = "
                    "'ASSET_MATERIALIZATION' and asset_key like %s", ['%"raw", "flights"%'])
        days = cur.fetchone()[0]
    con.close()
    assert runs >= 1 and succeeded == runs and backfills == 1
    assert days == 3  # one materialization per daily partition of raw/flights, 2013-01-01..03
