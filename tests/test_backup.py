"""Backup and restore: what cannot be rebuilt is copied with a manifest, checked before restoring,
and a restored lakehouse rebuilds the same flights and the same scores."""

from __future__ import annotations

import shutil

import pytest

from assets.jobs import DAILY_JOB, PUBLISH_JOB, REFERENCE_JOB, SCORE_JOB, of_horizon
from resources.ml.availability import NOWCAST
from resources.catalog.publish import connect_catalog
from resources.core.backup import BackupError, backup, restore
from resources.core.settings import Settings
from tests.conftest import make_lakehouse

FLIGHTS = "select md5(string_agg(flight_id || coalesce(tailnum_key, '') || coalesce(arr_delay::varchar, ''), ',' order by flight_id)), count(*) from curated.fct_flights"
SCORES = "select md5(string_agg(flight_id || p_late::varchar || model_version, ',' order by flight_id)), count(*) from ml.flight_delay_scores"


def checksums(settings: Settings) -> tuple:
    with connect_catalog(settings) as con:
        return con.execute(FLIGHTS).fetchone(), con.execute(SCORES).fetchone()


def test_backup_restore_rebuilds_the_same_flights_and_scores(ml_lakehouse, tmp_path):
    source = ml_lakehouse.settings
    manifest = backup(source, tmp_path / "backup")
    files = manifest["files"]
    assert any(k.startswith("raw/flights/") for k in files) and "ml/registry/audit.jsonl" in files
    assert any(k.startswith("ml/models/") for k in files)
    assert not any(k.endswith(".duckdb") or k.startswith(("ml/features/", "ml/scores/")) or "secrets" in k
                   or k.endswith(".key") for k in files)  # derived data and keys stay out

    # A damaged copy is refused by name, and nothing is written.
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "backup", damaged)
    victim = next(k for k in files if k.startswith("raw/flights/"))
    with open(damaged / "data" / victim, "r+b") as fh:
        fh.truncate(100)
    target = tmp_path / "restored" / "lakehouse"
    with pytest.raises(BackupError, match=f"{victim}: sha256 does not match"):
        restore(Settings(root=target), damaged)
    assert not target.exists()

    # Without the keys the restore says which keys to bring back, and writes nothing.
    with pytest.raises(BackupError, match="LAKEHOUSE_REGISTRY_KEY"):
        restore(Settings(root=tmp_path / "nokeys" / "lakehouse"), tmp_path / "backup")
    assert not (tmp_path / "nokeys" / "lakehouse").exists()

    # The operator brings the keys from the secret store; then the graph rebuilds everything derived.
    shutil.copytree(source.root.parent / f"{source.root.name}.secrets", target.parent / "lakehouse.secrets")
    restore(Settings(root=target), tmp_path / "backup")
    lh = make_lakehouse(target)
    for job, span in ((REFERENCE_JOB, None), (DAILY_JOB, ("2013-01-01", "2013-02-28")),
                      (SCORE_JOB, ("2013-01-01", "2013-02-28")),
                      (of_horizon(SCORE_JOB, NOWCAST), ("2013-01-01", "2013-02-28")), (PUBLISH_JOB, None)):
        assert lh.run(job, *(span or ())).success, job
    assert checksums(lh.settings) == checksums(source)
    with pytest.raises(BackupError, match="not empty"):
        restore(Settings(root=target), tmp_path / "backup")


def test_backup_refuses_a_place_inside_the_lakehouse_or_a_used_folder(tmp_path):
    settings = Settings(root=tmp_path / "lakehouse").ensure()
    with pytest.raises(BackupError, match="inside the lakehouse"):
        backup(settings, settings.root / "backup")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(BackupError, match="not empty"):
        backup(settings, tmp_path / "used")
