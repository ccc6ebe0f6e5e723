"""Backup and restore: what cannot be rebuilt is copied with a manifest, checked before restoring,
and a restored lakehouse rebuilds the same flights and the same scores."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest

from assets.jobs import DAILY_JOB, PUBLISH_JOB, REFERENCE_JOB, SCORE_JOB, of_horizon
from resources.catalog.publish import connect_catalog
from resources.core.backup import BackupError, backup, manifest_mac, registry_key, restore, verify
from resources.core.settings import Settings
from resources.ml.features.availability import NOWCAST
from tests.conftest import make_lakehouse

FLIGHTS = "select md5(string_agg(flight_id || coalesce(tailnum_key, '') || coalesce(arr_delay::varchar, ''), ',' order by flight_id)), count(*) from curated.fct_flights"
# Ordered by flight and horizon: a flight has a score per horizon, and ordered by flight alone the
# digest followed the rows' physical order, which a rewrite of one horizon's days changes.
SCORES = (
    "select md5(string_agg(flight_id || horizon || p_late::varchar || model_version, ',' order by flight_id, horizon)),"
    " count(*) from ml.flight_delay_scores"
)


def checksums(settings: Settings) -> tuple:
    with connect_catalog(settings) as con:
        return con.execute(FLIGHTS).fetchone(), con.execute(SCORES).fetchone()


def test_backup_restore_rebuilds_the_same_flights_and_scores(ml_lakehouse, tmp_path):
    source = ml_lakehouse.settings
    manifest = backup(source, tmp_path / "backup")
    files = manifest["files"]
    assert any(k.startswith("raw/flights/") for k in files) and "ml/registry/audit.jsonl" in files
    assert any(k.startswith("ml/models/") for k in files)
    assert not any(
        k.endswith(".duckdb") or k.startswith(("ml/features/", "ml/scores/")) or "secrets" in k or k.endswith(".key")
        for k in files
    )  # derived data and keys stay out

    # A damaged copy is refused by name, and nothing is written (the keys are at hand: the
    # operator brought them from the secret store).
    target = tmp_path / "restored" / "lakehouse"
    shutil.copytree(source.root.parent / f"{source.root.name}.secrets", target.parent / "lakehouse.secrets")
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "backup", damaged)
    victim = next(k for k in files if k.startswith("raw/flights/"))
    with open(damaged / "data" / victim, "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(BackupError, match=f"{victim}: sha256 does not match"):
        restore(Settings(root=target), damaged)
    assert not target.exists()

    # Without the keys the restore says which keys to bring back, and writes nothing.
    with pytest.raises(BackupError, match="LAKEHOUSE_REGISTRY_KEY"):
        restore(Settings(root=tmp_path / "nokeys" / "lakehouse"), tmp_path / "backup")
    assert not (tmp_path / "nokeys" / "lakehouse").exists()

    # With the keys, the graph rebuilds everything derived.
    restore(Settings(root=target), tmp_path / "backup")
    lh = make_lakehouse(target)
    for job, span in (
        (REFERENCE_JOB, None),
        (DAILY_JOB, ("2013-01-01", "2013-02-28")),
        (SCORE_JOB, ("2013-01-01", "2013-02-28")),
        (of_horizon(SCORE_JOB, NOWCAST), ("2013-01-01", "2013-02-28")),
        (PUBLISH_JOB, None),
    ):
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


def _small_backup(tmp_path):
    settings = Settings(root=tmp_path / "lakehouse").ensure()
    (settings.root / "raw" / "flights").mkdir(parents=True)
    (settings.root / "raw" / "flights" / "part.csv").write_text("a,b\n1,2\n")
    backup(settings, tmp_path / "backup")
    return settings, json.loads((tmp_path / "backup" / "manifest.json").read_text())


@pytest.mark.parametrize(
    "rel",
    [
        "../lakehouse.secrets/registry.key",
        "../evil.txt",
        "/tmp/evil.txt",
        "raw/../../evil.txt",
        "warehouse.sqlite",
        "raw/$(touch x)/../../x",
    ],
)
def test_a_forged_backup_is_refused_by_name_and_writes_nothing(tmp_path, rel):
    settings, manifest = _small_backup(tmp_path)
    payload = b"forged"
    forged = {
        **manifest,
        "files": {**manifest["files"], rel: {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}},
    }
    where = tmp_path / "backup" / "data" / rel.lstrip("/")
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_bytes(payload)
    # Without the key (an attacker's edit) the MAC does not verify ...
    (tmp_path / "backup" / "manifest.json").write_text(json.dumps(forged))
    target = Settings(root=tmp_path / "restored" / "lakehouse")
    shutil.copytree(tmp_path / "lakehouse.secrets", tmp_path / "restored" / "lakehouse.secrets")
    with pytest.raises(BackupError, match="MAC does not verify"):
        restore(target, tmp_path / "backup")
    # ... and signed with the key (someone holding it), the path itself is refused by name.
    forged["mac"] = manifest_mac(registry_key(settings), forged)
    (tmp_path / "backup" / "manifest.json").write_text(json.dumps(forged))
    with pytest.raises(BackupError, match=re.escape(rel)):
        restore(target, tmp_path / "backup")
    assert (
        not target.root.exists()
        and not (tmp_path / "evil.txt").exists()
        and not (tmp_path / "restored" / "evil.txt").exists()
    )
    assert (tmp_path / "restored" / "lakehouse.secrets" / "registry.key").read_bytes() != payload


def test_an_unsigned_manifest_is_refused(tmp_path):
    settings, manifest = _small_backup(tmp_path)
    del manifest["mac"]
    (tmp_path / "backup" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="MAC does not verify"):
        verify(tmp_path / "backup", registry_key(settings))


def test_a_restore_brings_the_alert_log_back(tmp_path):
    from resources.monitoring.alerts import append_alert, read_alerts

    settings, _ = _small_backup(tmp_path / "first")  # a lakehouse with a delivery and keys
    append_alert(settings, {"kind": "run_failed", "run_id": "r1", "error": 'it\'s "$(rm -rf /)"'})
    append_alert(settings, {"kind": "check_failed", "check": "monitoring/drift:x", "run_id": "r2"})
    manifest = backup(settings, tmp_path / "backup")
    assert "monitoring/alerts.jsonl" in manifest["files"]
    target = tmp_path / "restored" / "lakehouse"
    shutil.copytree(settings.root.parent / f"{settings.root.name}.secrets", target.parent / "lakehouse.secrets")
    restore(Settings(root=target), tmp_path / "backup")
    assert read_alerts(Settings(root=target)) == read_alerts(settings) != []
