"""Real runs in temporary lakehouses: real Dagster, dbt, DuckDB and parquet on the embedded data."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from assets.definitions import build_definitions
from assets.jobs import DAILY_JOB, PROMOTE_JOB, PUBLISH_JOB, REFERENCE_JOB, SCORE_JOB, TRAIN_JOB, of_horizon
from resources.core.dagster_private import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.core.lakehouse_resource import LakehouseResource
from resources.core.settings import DBT_PROJECT_DIR, Settings
from resources.ml.features.availability import NOWCAST

os.environ.setdefault("DO_NOT_TRACK", "1")
warnings.filterwarnings("ignore")

FULL_YEAR_FLIGHTS = 336_776


def pytest_sessionstart(session):
    if not (DBT_PROJECT_DIR / "target" / "manifest.json").exists():
        raise pytest.UsageError("dbt manifest missing: run `make test` (it runs `dbt parse` first)")


# `make test` runs on both cores (pytest-xdist, `--dist loadfile`): a module's tests stay on one
# worker, in order, so its module fixtures are built once (the year's session lakehouse is used by
# test_year_build alone; ml_lakehouse is built once and copied, below). The slowest modules go first,
# so a long one does not start last and leave the other worker idle. Not `--dist loadgroup`: with
# pytest 9.2 and pytest-xdist 3.8 its groups are silently ignored (pytest-xdist issue #1386).
SLOWEST_FIRST = [
    "test_year_build",
    "test_quality_alarm",
    "test_lakehouse_on_s3",
    "test_deliveries",
    "test_warehouse_scale_out",
    "test_backup",
    "test_ml",
    "test_automation",
    "test_day_ahead",
]


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        module = item.module.__name__.rsplit(".", 1)[-1]
        return SLOWEST_FIRST.index(module) if module in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: a module's own order is kept


@dataclass
class Lakehouse:
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance

    def run(
        self,
        job: str,
        start: str | None = None,
        end: str | None = None,
        raise_on_error: bool = True,
        run_config: dict | None = None,
    ):
        tags = {}
        if start:
            tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end or start}
        return self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance, tags=tags, raise_on_error=raise_on_error, run_config=run_config
        )

    def build(self, start: str, end: str | None = None) -> None:
        """Reference data, the daily range [start, end] in one run, then the catalog."""
        assert self.run(REFERENCE_JOB).success
        assert self.run(DAILY_JOB, start, end).success
        assert self.run(PUBLISH_JOB).success


def make_lakehouse(root: Path, instance: dg.DagsterInstance | None = None) -> Lakehouse:
    settings = Settings(root=root.resolve(), env="dev").ensure()
    defs = build_definitions(LakehouseResource(root=str(settings.root), env="dev"))
    return Lakehouse(settings, defs, instance or dg.DagsterInstance.ephemeral())


@pytest.fixture(scope="session")
def year_lakehouse(tmp_path_factory) -> Lakehouse:
    """The whole embedded year, daily partitions backfilled in one run. Read-only for tests."""
    lh = make_lakehouse(tmp_path_factory.mktemp("year") / "lakehouse")
    lh.build("2013-01-01", "2013-12-31")
    return lh


@pytest.fixture
def lakehouse(tmp_path) -> Lakehouse:
    """A fresh, empty lakehouse for tests that change data."""
    return make_lakehouse(tmp_path / "lakehouse")


# The ML lifecycle on Jan-Feb 2013: trained on January, judged on late February.
SPLIT = {
    "train_start": "2013-01-01",
    "validation_start": "2013-02-01",
    "test_start": "2013-02-15",
    "test_end": "2013-03-01",
}
APPROVAL = {"approver": "pytest", "reason": "test deployment"}


def promote_config(**config) -> dict:
    return {"ops": {"ml__production_model": {"config": config}}}


def build_ml_lakehouse(root: Path, instance: dg.DagsterInstance) -> Lakehouse:
    lh = make_lakehouse(root, instance)
    assert lh.run(REFERENCE_JOB).success
    assert lh.run(DAILY_JOB, "2013-01-01", "2013-02-28").success
    assert lh.run(TRAIN_JOB, run_config={"ops": {"ml__model_candidate": {"config": SPLIT}}}).success
    assert lh.run(PROMOTE_JOB, run_config=promote_config(**APPROVAL)).success
    assert lh.run(SCORE_JOB, "2013-01-01", "2013-02-28").success
    # The nowcast horizon has a model of its own, promoted and scored like the day-ahead one.
    assert lh.run(
        of_horizon(TRAIN_JOB, NOWCAST), run_config={"ops": {"ml__model_candidate_nowcast_2h": {"config": SPLIT}}}
    ).success
    assert lh.run(PROMOTE_JOB, run_config=promote_config(**APPROVAL, horizon=NOWCAST)).success
    assert lh.run(of_horizon(SCORE_JOB, NOWCAST), "2013-01-01", "2013-02-28").success
    assert lh.run(PUBLISH_JOB).success
    return lh


@pytest.fixture(scope="session")
def ml_lakehouse(tmp_path_factory, worker_id):
    """Jan-Feb 2013 with both horizons' models trained, promoted and scored, and published. Tests
    may change it. Under `make test`'s workers it is built once, under a lock in the session's
    shared temporary folder, with a Dagster instance on disk; each worker then takes its own copy
    (lakehouse, keys, instance), so one worker's changes never reach the other."""
    if worker_id == "master":  # plain pytest: one process
        return build_ml_lakehouse(tmp_path_factory.mktemp("ml") / "lakehouse", dg.DagsterInstance.ephemeral())
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "ml-built"
    with FileLock(str(shared) + ".lock"):
        if not (shared / "complete").exists():
            shutil.rmtree(shared, ignore_errors=True)
            (shared / "dagster").mkdir(parents=True)
            with dg.DagsterInstance.local_temp(str(shared / "dagster")) as instance:
                build_ml_lakehouse(shared / "lakehouse", instance)
            (shared / "complete").touch()
    own = tmp_path_factory.mktemp("ml")
    for name in ("lakehouse", "lakehouse.secrets", "dagster"):
        shutil.copytree(shared / name, own / name)
    return make_lakehouse(own / "lakehouse", dg.DagsterInstance.local_temp(str(own / "dagster")))


@contextmanager
def moved_copy(src: Path, dst: Path):
    """Copy a lakehouse root and its secrets folder to ``dst``, and park the original while the
    copy is used, so any read of the old place fails loudly instead of passing silently."""
    shutil.copytree(src, dst)
    shutil.copytree(src.parent / f"{src.name}.secrets", dst.parent / f"{dst.name}.secrets")
    parked = src.with_name(f"{src.name}.parked")
    os.rename(src, parked)
    try:
        yield dst
    finally:
        os.rename(parked, src)


def three_day_home(tmp_path: Path, monkeypatch, instance_yaml: Path) -> Path:
    """A DAGSTER_HOME with ``instance_yaml``, a lakehouse under ``tmp_path`` and the declared
    sources cut to 2013-01-01..03: the smallest real build of `make run`'s machinery."""
    import yaml

    from resources.raw.sources import DEFAULT_SOURCES_FILE

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(instance_yaml, home / "dagster.yaml")
    sources = yaml.safe_load(DEFAULT_SOURCES_FILE.read_text())
    for spec in sources["sources"].values():
        if spec.get("partitioning"):
            spec["partitioning"]["end"] = "2013-01-04"
    (tmp_path / "sources.yml").write_text(yaml.safe_dump(sources))
    monkeypatch.setenv("LAKEHOUSE_SOURCES", str(tmp_path / "sources.yml"))
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lakehouse"))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@contextmanager
def local_s3_server():
    """moto's S3 server mode on 127.0.0.1 (a free port), stopped on exit. Yields the standard AWS
    variables that point a client at it (tests/test_object_store.py, benchmarks/engines.py)."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def upload_raw_zone(aws_env: dict[str, str], raw_dir: Path, bucket: str, prefix: str) -> str:
    """Copy a raw zone to ``s3://bucket/prefix/raw`` on that server; returns the URL."""
    import s3fs

    fs = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": aws_env["AWS_ENDPOINT_URL"]},
        key=aws_env["AWS_ACCESS_KEY_ID"],
        secret=aws_env["AWS_SECRET_ACCESS_KEY"],
        skip_instance_cache=True,
    )
    fs.mkdir(bucket)
    fs.put(str(raw_dir) + "/", f"{bucket}/{prefix}/raw/", recursive=True)
    return f"s3://{bucket}/{prefix}/raw"


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
    subprocess.run(
        _as_postgres(
            [
                initdb,
                "-D",
                str(data),
                "-U",
                "dagster",
                "--auth=scram-sha-256",
                f"--pwfile={work / 'pw'}",
                "-E",
                "UTF8",
                "--no-instructions",
            ]
        ),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_postgres(
            [pg_ctl, "-D", str(data), "-l", str(work / "log"), "-w", "start", "-o", f"-h 127.0.0.1 -p {port} -k {work}"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        con = psycopg2.connect(host="127.0.0.1", port=port, user="dagster", password=PASSWORD, dbname="postgres")
        con.autocommit = True
        con.cursor().execute("create database dagster")
        con.close()
        yield {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(port),
            "DAGSTER_PG_USER": "dagster",
            "DAGSTER_PG_PASSWORD": PASSWORD,
            "DAGSTER_PG_DB": "dagster",
        }
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
