"""The warehouse is a DuckLake: readers see committed snapshots, a kept snapshot is readable by
version, and the nightly maintenance removes only files no kept snapshot reads."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from assets.jobs import REFERENCE_JOB
from assets.warehouse.maintenance import MAINTENANCE_KEY
from resources.core.duckdb_connect import WAREHOUSE_ALIAS, attach_ducklake, connect
from resources.warehouse.lock import open_warehouse

COUNT = "select count(*) from curated.dim_carriers"


def _files(settings) -> set[str]:
    return {p.relative_to(settings.warehouse_data).as_posix() for p in settings.warehouse_data.rglob("*.parquet")}


def _snapshot(settings) -> int:
    with open_warehouse(settings) as con:
        return con.execute(f"select id from ducklake_current_snapshot('{WAREHOUSE_ALIAS}')").fetchone()[0]


def _at(settings, snapshot: int, sql: str):
    with connect(search_path=settings.local_root) as con:
        attach_ducklake(con, settings.warehouse_metadata, settings.warehouse_data, WAREHOUSE_ALIAS, snapshot=snapshot)
        con.execute(f"use {WAREHOUSE_ALIAS}")
        return con.execute(sql).fetchone()[0]


def _maintain(lh, keep_days: float) -> dict:
    result = dg.materialize(
        [lh.defs.get_assets_def(MAINTENANCE_KEY)],
        instance=lh.instance,
        resources={"lakehouse": lh.defs.resources["lakehouse"]},
        run_config={"ops": {"warehouse__maintenance": {"config": {"keep_days": keep_days}}}},
    )
    assert result.success
    (event,) = result.asset_materializations_for_node("warehouse__maintenance")
    return {k: v.value for k, v in event.metadata.items()}


def test_maintenance_keeps_what_kept_snapshots_read_and_removes_the_rest(lakehouse):
    lh = lakehouse
    assert lh.run(REFERENCE_JOB).success
    first = _snapshot(lh.settings)
    carriers = _at(lh.settings, first, COUNT)
    assert carriers > 0
    assert lh.run(REFERENCE_JOB).success  # every reference table rebuilt: new files, old ones kept
    assert _snapshot(lh.settings) > first
    before = _files(lh.settings)

    kept = _maintain(lh, keep_days=7)
    assert kept["snapshots_expired"] == 0 and kept["files_deleted"] == 0
    assert _files(lh.settings) == before
    assert _at(lh.settings, first, COUNT) == carriers  # time travel to the first build still reads

    done = _maintain(lh, keep_days=0)
    after = _files(lh.settings)
    assert done["files_deleted"] > 0 and after < before and len(after) == done["live_files"]
    with open_warehouse(lh.settings) as con:
        assert con.execute(COUNT).fetchone()[0] == carriers  # the current build is whole
    with pytest.raises(duckdb.Error):
        _at(lh.settings, first, COUNT)  # that snapshot is gone, and says so


def test_a_reader_does_not_wait_for_the_writer_lock(lakehouse):
    from resources.warehouse.lock import warehouse_lock

    lh = lakehouse
    assert lh.run(REFERENCE_JOB).success
    with warehouse_lock(lh.settings), open_warehouse(lh.settings, read_only=False) as writer:
        writer.execute("begin")
        writer.execute("delete from curated.dim_carriers")
        with open_warehouse(lh.settings) as reader:  # another connection, while a write is open
            assert reader.execute(COUNT).fetchone()[0] > 0  # the last committed snapshot
        writer.execute("rollback")


def test_feature_reads_do_not_wait_for_a_writer_and_a_publish_never_sees_its_open_transaction(lakehouse):
    """A reader never waits for the writer; a publish (itself a small warehouse write: the
    catalog's own tables) waits for the writer's lock and then names a committed snapshot."""
    import threading

    from resources.catalog.publish import connect_catalog, publish_catalog
    from resources.ml.lake import read_warehouse
    from resources.warehouse.lock import warehouse_lock

    lh = lakehouse
    assert lh.run(REFERENCE_JOB).success
    committed = _snapshot(lh.settings)
    done: dict = {}

    def read() -> None:
        (done["carriers"],) = read_warehouse(lh.settings, ("select count(*) as n from curated.dim_carriers", []))

    def publish() -> None:
        done["result"] = publish_catalog(lh.settings)

    with warehouse_lock(lh.settings), open_warehouse(lh.settings, read_only=False) as writer:
        writer.execute("begin")
        writer.execute("delete from curated.dim_carriers")
        reader = threading.Thread(target=read, daemon=True)
        publisher = threading.Thread(target=publish, daemon=True)
        reader.start()
        publisher.start()
        reader.join(300)
        assert not reader.is_alive(), "the reader waited for the writer's lock"
        publisher.join(3)
        assert publisher.is_alive(), "the publish wrote beside an open writer"
        writer.execute("rollback")
    publisher.join(300)
    assert not publisher.is_alive()
    assert done["carriers"]["n"][0] > 0
    assert done["result"].warehouse_snapshot == committed + 1  # its own commit, right after
    with connect_catalog(lh.settings) as con:
        assert con.execute("select count(*) from curated.dim_carriers").fetchone()[0] == done["carriers"]["n"][0]
        assert con.execute("select warehouse_snapshot from catalog.version").fetchone()[0] == committed + 1
        assert con.execute("select warehouse_snapshot from catalog.versions").fetchall() == [(committed + 1,)]


def test_a_writer_killed_mid_write_leaves_the_previous_rows_and_maintenance_removes_its_files(tmp_path):
    """kill -9 during a large write: the day still reads as before, and the files the killed
    transaction had written (never committed) are removed by the maintenance."""
    import signal
    import subprocess
    import sys
    import time
    from datetime import timedelta

    from resources.core.settings import Settings
    from resources.ml.lake import read_lake_days, write_lake_days
    from resources.warehouse.maintenance import maintain
    from tests.test_ml_lake_tables import D1, _rows

    settings = Settings(root=tmp_path / "lakehouse", env="dev")
    settings.ensure()
    write_lake_days(settings, "t", {D1: _rows(D1, 1)})
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import numpy as np, polars as pl
from datetime import date
from pathlib import Path
from resources.core.settings import Settings
from resources.ml.lake import write_lake_days
n = 30_000_000
rows = pl.DataFrame({{"flight_id": np.arange(n).astype(str), "flight_date": [date(2013, 1, 1)] * n,
                     "x": np.random.rand(n)}})
print("writing", flush=True)
write_lake_days(Settings(root=Path({str(settings.root)!r}), env="dev"), "t", {{date(2013, 1, 1): rows}})
""",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "writing"
    deadline = time.monotonic() + 60
    files = lambda: set(settings.warehouse_data.rglob("*.parquet"))  # noqa: E731
    before = files()
    while files() == before and time.monotonic() < deadline:  # its first data file is out
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert read_lake_days(settings, "t")["x"].to_list() == [1.0]  # the killed write never happened
    assert files() > before  # ... but left a file behind
    done = maintain(settings, timedelta(0))
    assert done.orphans_deleted >= 1 and files() <= before
    assert read_lake_days(settings, "t")["x"].to_list() == [1.0]
