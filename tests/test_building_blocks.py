"""Unit tests of the plain functions the assets call."""

import multiprocessing
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.definitions import build_definitions
from resources.core.parquet_io import write_parquet_atomic
from resources.core.pseudonym import MissingKeyError, load_key, pseudonymize
from resources.core.settings import EnvironmentMismatch, Settings
from resources.raw.ingest import apply_contract
from resources.raw.sources import ColumnContract, DailyPartitioning, SourceSpec
from resources.warehouse.lock import WarehouseBusy, warehouse_lock

pytestmark = pytest.mark.fast  # `make test-fast`: no Dagster run, no dbt build


def test_environment_roots_are_separate(tmp_path):
    dev = Settings.from_env({"LAKEHOUSE_ROOT": str(tmp_path), "LAKEHOUSE_ENV": "dev"}).ensure()
    with pytest.raises(EnvironmentMismatch, match="belongs to LAKEHOUSE_ENV=dev"):
        Settings.from_env({"LAKEHOUSE_ROOT": str(tmp_path), "LAKEHOUSE_ENV": "prod"}).ensure()
    assert Settings.from_env({"LAKEHOUSE_ENV": "prod"}).root != Settings.from_env({}).root
    assert dev.warehouse_catalog != dev.catalog_path
    with pytest.raises(ValueError, match="LAKEHOUSE_ENV"):
        Settings.from_env({"LAKEHOUSE_ENV": "staging"})


def test_pseudonym_is_keyed_stable_and_never_the_clear_value(tmp_path):
    s = Settings(root=tmp_path, env="dev").ensure()
    key = load_key(s, environ={})
    assert load_key(s, environ={}) == key  # generated once, then reused
    assert (s.secrets_dir / "pseudonym.key").stat().st_mode & 0o777 == 0o600
    assert s.secrets_dir.stat().st_mode & 0o777 == 0o700
    assert not s.secrets_dir.is_relative_to(s.root)  # a copied or published lakehouse holds no key
    a = pseudonymize("N14228", key)
    assert a == pseudonymize("N14228", key) != pseudonymize("N14228", b"other key")
    assert "N14228" not in a and len(a) == 64 and pseudonymize(None, key) is None
    assert load_key(s, environ={"LAKEHOUSE_PSEUDONYM_KEY": "k"}) == b"k"
    with pytest.raises(MissingKeyError):
        load_key(Settings(root=tmp_path / "p", env="prod"), environ={})


def test_contract_names_column_value_and_reason():
    spec = SourceSpec(
        name="t",
        description="",
        location="x.csv",
        format="csv",
        columns=(
            ColumnContract("d", "string", nullable=False),
            ColumnContract("n", "int"),
            ColumnContract("v", "float"),
        ),
        partitioning=DailyPartitioning(("d",), None, None),
    )
    df = pl.DataFrame(
        {
            "_source_row": [1, 2, 3],
            "d": ["2013-01-01", None, "2013-01-01"],
            "n": ["1", "2", "x"],
            "v": ["10", "1.5", None],
            "extra": ["a", "b", "c"],
        }
    )
    res = apply_contract(spec, df)
    assert res.valid["n"].to_list() == [1] and res.valid["v"].dtype == pl.Float64
    assert res.rejected["_reason"].to_list() == ["column 'd': null is not allowed", "column 'n': x is not a valid int"]
    assert res.unexpected_columns == ["extra"] and "extra" in res.valid.columns


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a" / "part.parquet"
    write_parquet_atomic(pl.DataFrame({"x": [1]}), path)
    write_parquet_atomic(pl.DataFrame({"x": [2, 3]}), path)
    assert pl.read_parquet(path)["x"].to_list() == [2, 3]
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]


def _hold_lock(root: str, seconds: float) -> None:
    with warehouse_lock(Settings(root=Path(root))):
        (Path(root) / "held").touch()
        time.sleep(seconds)


def test_a_second_writer_waits_for_the_warehouse_lock(tmp_path):
    # fork, not spawn: another process all the same, without re-importing the project (5-8 s).
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(str(tmp_path), 3))
    holder.start()
    deadline = time.monotonic() + 60
    while not (tmp_path / "held").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(WarehouseBusy, match="stayed locked"):
        with warehouse_lock(Settings(root=tmp_path), timeout_s=0.5, poll_s=0.1):
            pass
    holder.join()
    with warehouse_lock(Settings(root=tmp_path), timeout_s=1):
        pass


def test_every_asset_has_group_kind_owner_and_partitioned_ones_run_single():
    graph = build_definitions().resolve_asset_graph()
    groups = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        groups.add(node.group_name)
        assert node.kinds and node.owners, key
        assert node.description, key
        if node.partitions_def is not None:
            assert node.backfill_policy == dg.BackfillPolicy.single_run(), key
    assert {"raw", "staging", "curated", "ml", "publish"} <= groups
    assert len(list(graph.asset_check_keys)) > 40  # dbt tests became asset checks


def test_rows_outside_the_declared_partitions_are_quarantined_not_dropped(tmp_path):
    from datetime import date

    from resources.raw.zone import ingest

    csv = tmp_path / "f.csv"
    csv.write_text("d,n\n2013-01-01,1\n2012-12-31,2\nnot a date,3\n2013-01-02,4\n")
    spec = SourceSpec(
        name="f",
        description="",
        location=str(csv),
        format="csv",
        columns=(ColumnContract("d", "string", nullable=False), ColumnContract("n", "int")),
        partitioning=DailyPartitioning(("d",), date(2013, 1, 1), date(2013, 1, 3)),
    )
    summary = ingest(Settings(root=tmp_path / "lh").ensure(), spec, "run12345", date(2013, 1, 1), date(2013, 1, 3))
    assert summary.raw_rows == 2 and summary.undated_quarantined == 2 and summary.delivered == 4
    undated = pl.read_parquet(tmp_path / "lh" / "quarantine" / "f" / "undated" / "f.csv.parquet")
    assert sorted(undated["_source_row"].to_list()) == [2, 3]
    assert any("outside the declared partitions" in r for r in undated["_reason"].to_list())


@pytest.mark.fast
def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    import os
    import subprocess
    import time

    from resources.core.parquet_io import write_text_atomic

    target = tmp_path / "flight_date=2013-01-01" / "part.parquet"
    target.parent.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = target.with_name(f".part.parquet.{dead.pid}.0123abcd.tmp")  # kill -9 between open and rename
    left.write_bytes(b"")
    old = target.with_name(".part.parquet.0123456789abcdef.tmp")  # the format before the pid was in it
    old.write_bytes(b"")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    live = target.with_name(f".part.parquet.{os.getpid()}.feedbeef.tmp")  # a writer still at work
    live.write_bytes(b"")
    write_text_atomic(target, "x")
    assert target.read_text() == "x"
    assert not left.exists() and not old.exists() and live.exists()


@pytest.mark.fast
def test_the_dbt_manifest_is_parsed_again_only_when_the_project_changed(tmp_path):
    import os
    import shutil

    from assets.warehouse.dbt import manifest_is_current
    from resources.core.settings import DBT_PROJECT_DIR

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    assert not manifest_is_current(project)  # no manifest yet
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text("{}")
    assert manifest_is_current(project)  # what every run process of `make dev` finds: no parse
    model = next((project / "models").rglob("*.sql"))
    later = (project / "target" / "manifest.json").stat().st_mtime + 5
    os.utime(model, (later, later))  # an edit during `make dev`
    assert not manifest_is_current(project)
