"""The production instance (deploy/prod/dagster.yaml) on a real PostgreSQL: started on 127.0.0.1 by
the fixture from the machine's PostgreSQL binaries (Debian's postgresql package, installed by
deploy/system-packages.sh), a partition backfill run through it, then stopped and removed; and the
same with the steps on a Celery worker through Redis (Debian's redis-server)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from assets.bootstrap import backfill_all, in_process_workspace, split_at_gate, synchronous_instance
from tests.conftest import PASSWORD, three_day_home

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNS = "select count(*), count(*) filter (where status = 'SUCCESS') from runs"
DAYS = (
    "select count(distinct partition) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' "
    "and asset_key like %s"
)


def _recorded(postgres: dict[str, str], *queries: tuple[str, list]) -> list[tuple]:
    """What the instance recorded, read from PostgreSQL, where another machine's webserver reads it:
    the first row of each (sql, params)."""
    import psycopg2

    con = psycopg2.connect(
        host="127.0.0.1", port=int(postgres["DAGSTER_PG_PORT"]), user="dagster", password=PASSWORD, dbname="dagster"
    )
    try:
        with con, con.cursor() as cur:
            out = []
            for sql, params in queries:
                cur.execute(sql, params)
                out.append(cur.fetchone())
            return out
    finally:
        con.close()


def test_a_partition_backfill_runs_through_the_production_instance_on_postgres(postgres, tmp_path, monkeypatch):
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
    (runs, succeeded), (backfills,), (days,) = _recorded(
        postgres, (RUNS, []), ("select count(*) from bulk_actions", []), (DAYS, ['%"raw", "flights"%'])
    )
    assert runs >= 1 and succeeded == runs and backfills == 1
    assert days == 3  # one materialization per daily partition of raw/flights, 2013-01-01..03


@pytest.mark.fast
def test_the_executor_is_chosen_by_name_and_a_typo_is_refused():
    from assets.definitions import run_executor

    assert run_executor({}).name == "in_process"
    assert run_executor({"LAKEHOUSE_EXECUTOR": "celery"}).name == "celery_executor"
    with pytest.raises(ValueError, match="LAKEHOUSE_EXECUTOR must be in_process or celery, got 'celeri'"):
        run_executor({"LAKEHOUSE_EXECUTOR": "celeri"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_broker():
    """Redis from Debian's redis-server on 127.0.0.1, no persistence, stopped afterwards."""
    server = shutil.which("redis-server")
    if not server:
        pytest.fail("redis-server is not installed (deploy/system-packages.sh installs Debian's redis-server)")
    import redis

    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="lakehouse-redis-"))
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def celery_worker(env: dict[str, str], log: Path):
    """One dagster-celery worker (its own process group, so the Celery children stop with it)."""
    cmd = [
        str(Path(sys.executable).parent / "dagster-celery"),
        "worker",
        "start",
        "-A",
        "dagster_celery.app",
        "-y",
        str(REPO_ROOT / "deploy" / "prod" / "celery.yaml"),
        "--name",
        "pytest",
        "--",
        "--concurrency",
        "1",
    ]
    # dagster-celery starts `celery` from PATH: the venv's, whether or not the venv is activated.
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_partition_backfill_runs_its_steps_on_a_celery_worker_through_redis(
    postgres, redis_broker, tmp_path, monkeypatch
):
    """The multi-node option: the same backfill with LAKEHOUSE_EXECUTOR=celery. Every step is a task
    on Redis, executed by a worker process that records it in the instance's PostgreSQL; the run
    itself only waits for the results."""
    for name, value in {
        **postgres,
        "LAKEHOUSE_EXECUTOR": "celery",
        "LAKEHOUSE_CELERY_BROKER": redis_broker,
        "LAKEHOUSE_CELERY_BACKEND": redis_broker,
    }.items():
        monkeypatch.setenv(name, value)
    home = three_day_home(tmp_path, monkeypatch, REPO_ROOT / "deploy" / "prod" / "dagster.yaml")
    instance = synchronous_instance(str(home))
    with celery_worker(dict(os.environ), tmp_path / "worker.log"), in_process_workspace(instance) as context:
        before, _ = split_at_gate(context.create_request_context().asset_graph)
        keys = [k for k in before if k.path[0] == "raw" and k.path[-1] in ("flights", "weather")]
        ok = backfill_all(context, keys, "celery test", log=lambda *_: None)
        assert ok, (tmp_path / "worker.log").read_text()[-3000:]
    (runs, succeeded), (steps,), (on_worker,), (days,) = _recorded(
        postgres,
        (RUNS, []),
        ("select count(*) from event_logs where dagster_event_type = 'STEP_SUCCESS'", []),
        ("select count(*) from event_logs where event like %s", ["%in celery worker%"]),
        (DAYS, ['%"raw", "weather"%']),
    )
    assert runs >= 1 and succeeded == runs
    assert steps >= 1 and on_worker == steps  # every step ran in the worker, none in the run's process
    assert days == 3
