"""The registry cannot be forged by editing files, the command line runs no shell code from its
arguments, refusals are audited, keys stay outside the lakehouse, and a copied lakehouse works."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from assets.jobs import DAILY_JOB, PROMOTE_JOB, PUBLISH_JOB, REFERENCE_JOB, SCORE_JOB, TRAIN_JOB
from assets.ml.model import PRODUCTION_KEY
from assets.ml.promote import refused
from resources.core.lakehouse_resource import LakehouseResource
from resources.core.secrets_store import MissingKeyError
from resources.core.settings import REPO_ROOT
from resources.ml.lake import SCORES_TABLE, lake_days
from resources.ml.registry.chain import RegistryTampered
from resources.ml.registry.storage import Registry, registry_dir
from tests.conftest import make_lakehouse, moved_copy, promote_config

SPLIT = {
    "train_start": "2013-01-01",
    "validation_start": "2013-01-11",
    "test_start": "2013-01-16",
    "test_end": "2013-01-21",
}


@pytest.fixture(scope="module")
def small_ml(tmp_path_factory):
    lh = make_lakehouse(tmp_path_factory.mktemp("small") / "lakehouse")
    assert lh.run(REFERENCE_JOB).success
    assert lh.run(DAILY_JOB, "2013-01-01", "2013-01-20").success
    assert lh.run(TRAIN_JOB, run_config={"ops": {"ml__model_candidate": {"config": SPLIT}}}).success
    assert lh.run(PROMOTE_JOB, run_config=promote_config(approver="pytest", reason="first model")).success
    assert lh.run(SCORE_JOB, "2013-01-16", "2013-01-20").success
    return lh


@pytest.fixture
def copied(small_ml, tmp_path):
    """A copy of the small lakehouse and its secrets folder; the original is moved away while the
    copy is used, so any read of the old place fails loudly."""
    with moved_copy(small_ml.settings.root, tmp_path / "elsewhere" / "lakehouse") as dst:
        yield make_lakehouse(dst)


def _failure(result) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    return str(failure.step_failure_data.error.cause or failure.step_failure_data.error)


def test_a_copied_lakehouse_scores_and_publishes_from_the_copy(copied):
    registry = Registry(copied.settings)
    record = registry.record(registry.production_version())
    assert not Path(record["artifact_path"]).is_absolute()
    assert copied.run(SCORE_JOB, "2013-01-18").success
    assert copied.run(PUBLISH_JOB).success
    assert __import__("datetime").date(2013, 1, 18) in lake_days(copied.settings, SCORES_TABLE, "day_ahead")


def test_a_forged_record_and_promotion_line_are_refused(copied):
    settings = copied.settings
    registry = Registry(settings)
    production = registry.production_version()
    models = settings.root / "ml" / "models"
    shutil.copytree(models / production, models / "flight-delay-forged")
    record = json.loads(registry.record_path(production).read_text())
    record["model_version"] = "flight-delay-forged"
    registry.record_path("flight-delay-forged").write_text(json.dumps(record))
    audit = registry_dir(settings) / "audit.jsonl"
    last = json.loads(audit.read_text().splitlines()[-1])
    forged = {**last, "event": "promoted", "version": "flight-delay-forged", "actor": "mallory"}
    with open(audit, "a") as fh:
        fh.write(json.dumps(forged) + "\n")
    lines = len(audit.read_text().splitlines())

    with pytest.raises(RegistryTampered, match=f"audit.jsonl line {lines}"):
        registry.production_version()
    result = copied.run(SCORE_JOB, "2013-01-18", raise_on_error=False)
    assert not result.success and f"line {lines}" in _failure(result)
    published = copied.run(PUBLISH_JOB, raise_on_error=False)
    assert not published.success and f"audit.jsonl line {lines}" in _failure(published)
    # The forged training record alone is refused too.
    with pytest.raises(RegistryTampered, match="flight-delay-forged.json"):
        registry.record("flight-delay-forged")


def test_an_edited_actor_breaks_the_chain(copied):
    audit = registry_dir(copied.settings) / "audit.jsonl"
    lines = audit.read_text().splitlines()
    promoted = next(i for i, line in enumerate(lines) if '"promoted"' in line)
    lines[promoted] = lines[promoted].replace('"pytest"', '"someone else"')
    audit.write_text("\n".join(lines) + "\n")
    with pytest.raises(RegistryTampered, match=f"line {promoted + 1}"):
        Registry(copied.settings).audit()


def test_refused_rollback_and_blank_approval_are_audited(copied):
    registry = Registry(copied.settings)
    run = copied.run(
        PROMOTE_JOB,
        raise_on_error=False,
        run_config=promote_config(action="rollback", approver="ana", reason="no earlier model"),
    )
    assert run.success and "no earlier production version" in refused(run)
    # The job refuses a blank approval at submit: no run is created and nothing is recorded.
    runs, lines = len(copied.instance.get_runs()), len(registry.audit())
    for blank in ({"approver": "  ", "reason": "r"}, {"approver": "ana", "reason": ""}):
        with pytest.raises(dg.DagsterConfigMappingFunctionError) as info:
            copied.run(PROMOTE_JOB, run_config=promote_config(**blank))
        assert "non-blank approver and reason" in str(info.value.__cause__)
    assert len(copied.instance.get_runs()) == runs and len(registry.audit()) == lines
    # The asset's own materialization (what "Materialize all" or a backfill runs, with no config)
    # succeeds as a refusal, audited; production is unchanged.
    production = registry.production_version()
    blank = copied.defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=copied.instance, asset_selection=[PRODUCTION_KEY]
    )
    assert blank.success and "approver and reason" in refused(blank)
    assert not blank.get_asset_materialization_events() and registry.production_version() == production
    events = registry.audit()
    assert events[-2]["event"] == "rollback_refused" and events[-2]["actor"] == "ana"
    assert events[-1]["event"] == "promotion_refused" and events[-1]["actor"] == "<empty>"
    assert all(isinstance(e["actor"], str) and e["actor"] for e in events)


def test_make_promote_runs_no_shell_code_from_its_arguments(copied, tmp_path):
    approver = f'a"; touch {tmp_path}/X; echo "'
    reason = f"$(touch {tmp_path}/Y) `touch {tmp_path}/Z` $HOME 'q'"
    env = {
        **os.environ,
        "LAKEHOUSE_ROOT": str(copied.settings.root),
        "DAGSTER_HOME": str(tmp_path),
        "LAKEHOUSE_ENV": "dev",
    }
    done = subprocess.run(
        ["make", "-s", "promote", f"APPROVER={approver}", f"REASON={reason}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0, done.stdout  # nothing new to promote: refused, and make says so
    assert "refused" in done.stderr
    assert not any((tmp_path / name).exists() for name in "XYZ")
    last = Registry(copied.settings).audit()[-1]
    assert last["event"] == "promotion_refused"
    assert last["actor"] == approver and last["reason"] == reason  # verbatim


def test_prod_without_keys_writes_nothing(tmp_path, monkeypatch):
    for var in ("LAKEHOUSE_PSEUDONYM_KEY", "LAKEHOUSE_REGISTRY_KEY"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "prod-lakehouse"
    with pytest.raises(MissingKeyError, match="LAKEHOUSE_PSEUDONYM_KEY, LAKEHOUSE_REGISTRY_KEY"):
        LakehouseResource(root=str(root), env="prod").settings()
    assert not root.exists()


def test_a_cut_or_removed_audit_chain_is_refused_everywhere_not_read_as_an_older_state(copied):
    settings = copied.settings
    audit = registry_dir(settings) / "audit.jsonl"
    whole = audit.read_text()
    lines = whole.splitlines(keepends=True)
    assert json.loads(lines[-1])["event"] == "promoted"
    for cut in ("".join(lines[:-1]), None):  # the latest promotion cut off; the file removed
        if cut is None:
            audit.unlink()
        else:
            audit.write_text(cut)
        with pytest.raises(RegistryTampered, match="cut off its end"):
            Registry(settings).production_version()
        scored = copied.run(SCORE_JOB, "2013-01-18", raise_on_error=False)
        assert not scored.success and "cut off its end" in _failure(scored)
        published = copied.run(PUBLISH_JOB, raise_on_error=False)
        assert not published.success and "cut off its end" in _failure(published)
        audit.write_text(whole)
        assert Registry(settings).production_version() == json.loads(lines[-1])["version"]


def test_a_flipped_production_artifact_fails_the_publish(copied):
    registry = Registry(copied.settings)
    artifact = copied.settings.root / registry.record(registry.production_version())["artifact_path"]
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))
    published = copied.run(PUBLISH_JOB, raise_on_error=False)
    assert not published.success and "refusing to load a file that is not the trained model" in _failure(published)


def test_an_append_that_hits_a_full_disk_leaves_the_chain_whole(copied, monkeypatch):
    settings = copied.settings
    audit = registry_dir(settings) / "audit.jsonl"
    before = audit.read_bytes()
    real_write = os.write

    def half_write(fd, data):  # what a full disk does: part of the bytes, then nothing
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", half_write)
    with pytest.raises(OSError, match="wrote .* of .* bytes"):
        Registry(settings).record_preproduction("flight-delay-x", False, {"error": "disk full"})
    monkeypatch.setattr(os, "write", real_write)
    assert audit.read_bytes() == before
    registry = Registry(settings)
    assert registry.production_version() is not None  # nothing to repair: it reads as before
    registry.record_preproduction("flight-delay-x", False, {"error": "after space was freed"})
    assert registry.audit()[-1]["details"]["error"] == "after space was freed"


def test_a_removed_registry_key_is_named_never_replaced(copied):
    from resources.core.secrets_store import secrets_dir

    key = secrets_dir(copied.settings) / "registry.key"
    saved = key.read_bytes()
    key.unlink()
    try:
        with pytest.raises(MissingKeyError, match="registry.key is missing.*audit.jsonl was sealed with it"):
            Registry(copied.settings).production_version()
        assert not key.exists()  # no new key was made
    finally:
        key.write_bytes(saved)
    assert Registry(copied.settings).production_version() is not None


def test_a_torn_last_line_is_removed_only_by_the_audited_repair_command(copied, tmp_path):
    settings = copied.settings
    audit = registry_dir(settings) / "audit.jsonl"
    whole = audit.read_bytes()
    production = Registry(settings).production_version()
    # A write cut short: half of a line with no line end (what a kill or a power cut can leave).
    next_line = json.dumps({"event": "preproduction_failed", "version": "v", "prev": "0" * 64, "mac": "f" * 64})
    audit.write_bytes(whole + next_line[: len(next_line) // 2].encode())
    with pytest.raises(RegistryTampered, match="not JSON"):
        Registry(settings).production_version()
    with pytest.raises(ValueError, match="non-blank approver and reason"):
        Registry(settings).repair_torn_line("  ", "torn")
    env = {**os.environ, "LAKEHOUSE_ROOT": str(settings.root), "DAGSTER_HOME": str(tmp_path), "LAKEHOUSE_ENV": "dev"}
    reason = f"power cut; $(touch {tmp_path}/X) 'q'"
    done = subprocess.run(
        ["make", "-s", "repair-audit", "APPROVER=ops-lead", f"REASON={reason}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "X").exists()
    registry = Registry(settings)
    assert registry.production_version() == production
    last = registry.audit()[-1]
    assert (last["event"], last["actor"], last["reason"]) == ("torn_line_removed", "ops-lead", reason)
    evidence = audit.parent / last["kept_at"]
    assert evidence.read_bytes() == next_line[: len(next_line) // 2].encode()
    assert audit.read_bytes().startswith(whole)
    with pytest.raises(RegistryTampered, match="nothing torn to repair"):
        registry.repair_torn_line("ops-lead", "again")
    # A complete line that does not verify is tampering, not a torn write: refused, left as it is.
    edited = audit.read_bytes().rstrip(b"\n").replace(b"ops-lead", b"someone")
    audit.write_bytes(edited)
    with pytest.raises(RegistryTampered, match="complete JSON"):
        registry.repair_torn_line("ops-lead", "hide an edit")
    assert audit.read_bytes() == edited
