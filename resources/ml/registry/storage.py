"""Model registry storage: artifacts with checksums, training records, and an append-only audit trail.

What the events mean (status, promotion and rollback policy) is resources/ml/registry/lifecycle.py; this
module stores, seals, verifies and exports them.

A version moves candidate -> pre-production -> production only through recorded events:

- ``registered`` (candidate) when a training run stores its artifact and metrics;
- ``preproduction_passed`` when it has scored a sample of operational data with the
  production schema (``preproduction_failed`` otherwise);
- ``promoted`` only with an approver and a reason, and only if it beats the current production
  model on the same test window; refusals are recorded too;
- ``rolled_back`` returns production to the version it replaced, with approver and reason.

Status is derived by replaying ``audit.jsonl``, and only after the whole chain verifies: each
event is linked to the previous line and carries a MAC keyed outside the lakehouse, and each
training record carries a MAC too (resources/ml/registry/chain.py), so a file edited, forged or
copied in by hand is refused by name. Every load checks the artifact's sha256 against the verified
record, so a swapped or damaged file is refused. Artifact paths are relative to the root.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib
import polars as pl

from resources.core.file_lock import exclusive
from resources.core.parquet_io import (
    append_lines,
    is_local,
    read_parquet,
    write_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from resources.core.parquet_io import sha256_file as sha256_of
from resources.core.secrets_store import load_or_create_key
from resources.core.settings import Settings
from resources.ml.features.availability import DAY_AHEAD
from resources.ml.lake import AUDIT_TABLE, REGISTRY_TABLE, replace_lake_table
from resources.ml.registry import lifecycle
from resources.ml.registry.chain import (
    KEY_ENV,
    RegistryTampered,
    seal_event,
    seal_head,
    seal_record,
    verify_chain,
    verify_head,
    verify_record,
)
from resources.ml.registry.lifecycle import BACKTEST, CANDIDATE, PREPRODUCTION, PRODUCTION, RETIRED  # noqa: F401


class ArtifactIntegrityError(RuntimeError):
    pass


class PromotionRefused(RuntimeError):
    pass


def registry_dir(settings: Settings) -> Path:
    return settings.root / "ml" / "registry"


def models_dir(settings: Settings) -> Path:
    return settings.root / "ml" / "models"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def registry_lock(settings: Settings):
    registry_dir(settings).mkdir(parents=True, exist_ok=True)
    # A lock is a local file: on an object-storage root it sits in the local state folder, and
    # writers on other machines must be serialised by the Dagster instance (docs/scaling-out.md).
    lock = settings.local_root / ".registry.lock" if settings.remote else registry_dir(settings) / ".lock"
    with exclusive(lock):
        yield


def new_version() -> str:
    return f"flight-delay-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass
class Registry:
    settings: Settings

    # --- records ---------------------------------------------------------------------------
    def record_path(self, version: str) -> Path:
        return registry_dir(self.settings) / "models" / f"{version}.json"

    @property
    def _key(self) -> bytes:
        return load_or_create_key(
            self.settings, KEY_ENV, "registry.key", sealed=registry_dir(self.settings) / "audit.jsonl"
        )

    def record(self, version: str) -> dict:
        """The training record, after verifying its MAC (RegistryTampered otherwise)."""
        path = self.record_path(version)
        if not path.exists():
            raise KeyError(f"model version {version!r} is not in the registry ({path})")
        return verify_record(self._key, json.loads(path.read_text()), path)

    def _write_record(self, record: dict) -> None:
        path = self.record_path(record["model_version"])
        write_text_atomic(path, json.dumps(seal_record(self._key, record), indent=2, sort_keys=True, default=str))

    def resolve(self, stored: str) -> Path:
        """Artifact locations are stored relative to the lakehouse root, so a copied or moved
        lakehouse reads its own files; an absolute path outside the root is refused."""
        path = Path(stored)
        if not path.is_absolute():
            return self.settings.root / path
        if not self.settings.remote and path.is_relative_to(self.settings.root):
            return path
        raise ArtifactIntegrityError(
            f"{stored} is outside this lakehouse ({self.settings.root}): refusing to read a model from another place"
        )

    def _store_artifact(self, pipeline: Any, version: str) -> dict:
        target = models_dir(self.settings) / version / "model.joblib"
        write_atomic(target, lambda fh: joblib.dump(pipeline, fh))
        return {
            "artifact_path": str(target.relative_to(self.settings.root)),
            "artifact_sha256": sha256_of(target),
            "artifact_bytes": target.stat().st_size,
            "registered_at": _now(),
        }

    def versions(self) -> list[str]:
        return sorted(p.stem for p in (registry_dir(self.settings) / "models").glob("*.json"))

    def _lines(self) -> list[str]:
        path = registry_dir(self.settings) / "audit.jsonl"
        return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    def _anchor(self) -> Path:
        from resources.core.secrets_store import create_private_dir, secrets_dir

        folder = secrets_dir(self.settings)
        create_private_dir(folder)
        return folder / "registry.head.json"

    def anchor_head(self) -> None:
        """Seal the current chain's head as its anchor: after a restore from a backup (an older
        chain, by the operator's decision), never as a way around a cut chain. Caller holds the lock."""
        lines = self._lines()
        verify_chain(self._key, lines, registry_dir(self.settings) / "audit.jsonl")
        write_text_atomic(self._anchor(), json.dumps(seal_head(self._key, lines)))

    def audit(self) -> list[dict]:
        """Every event, after verifying the whole chain and its anchored head (RegistryTampered
        names the file and line). A lakehouse without an anchor yet (restored from a backup, or
        older than anchoring) gets one with its next registry write."""
        lines, path = self._lines(), registry_dir(self.settings) / "audit.jsonl"
        events = verify_chain(self._key, lines, path)
        anchor = self._anchor()
        if anchor.exists():
            try:
                head = json.loads(anchor.read_text())
            except ValueError as exc:
                raise RegistryTampered(f"{anchor}: not the chain's anchor ({exc})") from None
            verify_head(self._key, head, lines, path, anchor)
        return events

    def _append(self, event: dict) -> dict:
        """Caller holds the registry lock. The new line links to the verified last line."""
        self.audit()  # the chain and its anchor verify before anything is added
        lines = self._lines()
        actor = str(event.get("actor") or "").strip()
        event = {"at": _now(), **event, "actor": actor or "<empty>"}  # never blank, never NaN
        line = seal_event(self._key, event, lines[-1] if lines else None)
        append_lines(registry_dir(self.settings) / "audit.jsonl", [line])
        write_text_atomic(self._anchor(), json.dumps(seal_head(self._key, [*lines, line])))
        return json.loads(line)

    def repair_torn_line(self, approver: str, reason: str) -> dict:
        """Remove a torn last line of the audit trail, by a person's decision, and record it.

        A line cut short while being written (the process killed, the power lost before fsync)
        makes the whole chain unreadable: every later read refuses it. Only this explicit command
        removes it, and only if it is what a torn write leaves: the last line, not ended by a line
        end, not JSON, never sealed in the anchor, after lines that verify. The removed bytes are
        kept beside the trail (``audit.torn-<time>.jsonl``) and the repair is itself an audited
        event with their sha256. Anything else (a complete line that does not verify, damage
        before the end) is refused: that is tampering, for a restore, not a repair."""
        if not approver.strip() or not reason.strip():
            raise ValueError("repairing the audit trail needs a non-blank approver and reason")
        path = registry_dir(self.settings) / "audit.jsonl"
        with registry_lock(self.settings):
            data = path.read_bytes() if path.exists() else b""
            cut = data.rfind(b"\n") + 1
            torn = data[cut:]
            if not torn:
                raise RegistryTampered(f"{path}: its last line is whole (ends with a line end): nothing torn to repair")
            try:
                json.loads(torn)
            except ValueError:
                pass  # cut short: what a torn write leaves
            else:
                raise RegistryTampered(
                    f"{path}: its last line is complete JSON without a line end, not a torn "
                    "write: verify it, or restore the registry from a backup"
                )
            kept = [line for line in data[:cut].decode().splitlines() if line.strip()]
            verify_chain(self._key, kept, path)  # everything before the torn line verifies
            anchor = self._anchor()
            if anchor.exists():
                verify_head(self._key, json.loads(anchor.read_text()), kept, path, anchor)
            evidence = path.with_name(f"audit.torn-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}.jsonl")
            write_atomic(evidence, lambda fh: fh.write(torn))
            write_atomic(path, lambda fh: fh.write(data[:cut]))
            event = self._append(
                {
                    "event": "torn_line_removed",
                    "actor": approver,
                    "reason": reason,
                    "removed_bytes": len(torn),
                    "removed_sha256": hashlib.sha256(torn).hexdigest(),
                    "kept_at": evidence.name,
                }
            )
            self.export()
            return event

    # --- derived state -----------------------------------------------------------------------
    # Each horizon has its own production model: the rules apply to one horizon's events at a time.
    def _events(self, horizon: str) -> list[dict]:
        return lifecycle.for_horizon(self.audit(), horizon)

    def statuses(self, horizon: str | None = None) -> dict[str, str]:
        """Status of each version of ``horizon``; of every version when None."""
        events = self.audit()
        if horizon is None:
            return lifecycle.statuses_of_every_horizon(events)
        return lifecycle.statuses(lifecycle.for_horizon(events, horizon))

    def horizon_of(self, version: str) -> str:
        return lifecycle.horizons(self.audit()).get(version, DAY_AHEAD)

    def production_version(self, horizon: str = DAY_AHEAD) -> str | None:
        return lifecycle.production_version(self.statuses(horizon))

    def production_history(self, horizon: str = DAY_AHEAD) -> list[str]:
        """Versions in the order they became production (rollbacks included)."""
        return lifecycle.production_history(self._events(horizon))

    def latest(self, status: str, horizon: str = DAY_AHEAD) -> str | None:
        return lifecycle.latest(self.statuses(horizon), status)

    # --- writes ------------------------------------------------------------------------------
    def register(self, pipeline: Any, record: dict, reference: pl.DataFrame | None = None) -> dict:
        """Store the artifact (and the monitoring reference sample: training rows with the model's
        own predictions) beside it, with checksums in the record."""
        version = record["model_version"]
        record = {**record, **self._store_artifact(pipeline, version)}
        if reference is not None:
            ref_path = write_parquet_atomic(reference, models_dir(self.settings) / version / "reference.parquet")
            record |= {
                "reference_path": str(ref_path.relative_to(self.settings.root)),
                "reference_sha256": sha256_of(ref_path),
            }
        with registry_lock(self.settings):
            self._write_record(record)
            self._append(
                {
                    "event": "registered",
                    "version": version,
                    "actor": "training",
                    "horizon": record.get("horizon", DAY_AHEAD),
                    "metrics": {"test_roc_auc": record["test"]["roc_auc"]},
                }
            )
            self.export()
        return record

    def register_backtest(self, pipeline: Any, record: dict) -> dict:
        """A walk-forward backtest model: stored and recorded like any model, with status 'backtest'."""
        version = record["model_version"]
        record = {**record, **self._store_artifact(pipeline, version)}
        with registry_lock(self.settings):
            self._write_record(record)
            self._append(
                {
                    "event": "registered_backtest",
                    "version": version,
                    "actor": "backtest",
                    "horizon": record.get("horizon", DAY_AHEAD),
                    "metrics": {"roc_auc": record["backtest"].get("roc_auc")},
                }
            )
        return record

    def verified_artifact(self, version: str) -> Path:
        """The artifact's path, after checking its sha256 against the verified training record."""
        rec = self.record(version)
        path = self.resolve(rec["artifact_path"])
        if not path.exists():
            raise ArtifactIntegrityError(f"artifact of {version} is missing: {path}")
        actual = sha256_of(path)
        if actual != rec["artifact_sha256"]:
            raise ArtifactIntegrityError(
                f"artifact of {version} at {path} has sha256 {actual}, registry recorded "
                f"{rec['artifact_sha256']}: refusing to load a file that is not the trained model"
            )
        return path

    def load(self, version: str):
        """The fitted pipeline, after checking its sha256 against the training record."""
        path = self.verified_artifact(version)
        name_moved_modules()
        if is_local(path):
            return joblib.load(path)
        with path.open("rb") as fh:
            return joblib.load(fh)

    def load_reference(self, version: str) -> pl.DataFrame:
        rec = self.record(version)
        if not rec.get("reference_path"):
            raise ArtifactIntegrityError(f"model {version} has no monitoring reference data")
        path = self.resolve(rec["reference_path"])
        if not path.exists():
            raise ArtifactIntegrityError(f"model {version} has no monitoring reference data ({path})")
        if sha256_of(path) != rec["reference_sha256"]:
            raise ArtifactIntegrityError(f"reference data of {version} at {path} does not match its sha256")
        return read_parquet(path)

    def record_preproduction(self, version: str, passed: bool, details: dict) -> None:
        with registry_lock(self.settings):
            self._append(
                {
                    "event": "preproduction_passed" if passed else "preproduction_failed",
                    "version": version,
                    "actor": "preproduction_check",
                    "details": details,
                }
            )
            self.export()

    def promote(
        self, version: str, approver: str, reason: str, candidate_auc: float, production_auc: float | None
    ) -> dict:
        """``candidate_auc`` and ``production_auc``: both measured on the candidate's validation window."""
        with registry_lock(self.settings):
            horizon = self.horizon_of(version)
            status = self.statuses(horizon)
            current = lifecycle.production_version(status)
            problem = lifecycle.promotion_refusal(status, version, approver, reason, candidate_auc, production_auc)
            metrics = {"candidate_validation_roc_auc": candidate_auc, "production_validation_roc_auc": production_auc}
            if problem:
                self._append(
                    {
                        "event": "promotion_refused",
                        "version": version,
                        "actor": approver,
                        "horizon": horizon,
                        "reason": reason,
                        "refusal": problem,
                        "metrics": metrics,
                        "previous_version": current,
                    }
                )
                self.export()
                raise PromotionRefused(problem)
            event = self._append(
                {
                    "event": "promoted",
                    "version": version,
                    "actor": approver,
                    "reason": reason,
                    "horizon": horizon,
                    "metrics": metrics,
                    "previous_version": current,
                }
            )
            self.export()
            return event

    def rollback(self, approver: str, reason: str, horizon: str = DAY_AHEAD) -> dict:
        with registry_lock(self.settings):
            events = self._events(horizon)
            status = lifecycle.statuses(events)
            current = lifecycle.production_version(status)
            previous = lifecycle.rollback_target(events, status)
            problem = lifecycle.rollback_refusal(status, previous, approver, reason)
            if problem:  # every attempt is an audit row, refused ones too
                self._append(
                    {
                        "event": "rollback_refused",
                        "version": previous,
                        "actor": approver,
                        "horizon": horizon,
                        "reason": reason,
                        "refusal": problem,
                        "previous_version": current,
                    }
                )
                self.export()
                raise PromotionRefused(problem)
            event = self._append(
                {
                    "event": "rolled_back",
                    "version": previous,
                    "actor": approver,
                    "horizon": horizon,
                    "reason": reason,
                    "previous_version": current,
                }
            )
            self.export()
            return event

    # --- analyst tables ----------------------------------------------------------------------
    def export(self) -> None:
        """Rewrite the lake tables ml.model_registry and ml.model_audit (published as they are),
        after verifying the chain, its anchor and every production artifact."""
        statuses, served = self.statuses(), lifecycle.horizons(self.audit())
        for version, status in statuses.items():
            if status == PRODUCTION:
                self.verified_artifact(version)
        rows = []
        for v in self.versions():
            rec = self.record(v)
            test, split = rec.get("test") or {}, rec.get("split") or {}  # backtest records have neither
            rows.append(
                {
                    "model_version": v,
                    "horizon": served.get(v, rec.get("horizon", DAY_AHEAD)),
                    "status": statuses.get(v, CANDIDATE),
                    "family": rec["family"],
                    "params": json.dumps(rec["params"], sort_keys=True),
                    "holdout_roc_auc": test.get("roc_auc"),
                    "holdout_pr_auc": test.get("pr_auc"),
                    "holdout_log_loss": test.get("log_loss"),
                    "holdout_brier": test.get("brier"),
                    "validation_roc_auc": (rec.get("validation") or {}).get("roc_auc"),
                    "train_start": split.get("train_start"),
                    "validation_start": split.get("validation_start"),
                    "test_start": split.get("test_start"),
                    "test_end": split.get("test_end"),
                    "data_version": rec.get("data_version"),
                    "code_version": rec.get("code_version"),
                    "artifact_sha256": rec["artifact_sha256"],
                    "registered_at": rec["registered_at"],
                }
            )
        if rows:
            replace_lake_table(self.settings, REGISTRY_TABLE, pl.DataFrame(rows, infer_schema_length=None))
        audit = [
            {
                "event_at": e["at"],
                "event": e["event"],
                "model_version": e.get("version"),
                "horizon": served.get(e.get("version"), e.get("horizon") or DAY_AHEAD),
                "actor": e.get("actor"),
                "reason": e.get("reason"),
                "previous_version": e.get("previous_version"),
                "refusal": e.get("refusal"),
                "metrics": json.dumps(e.get("metrics")) if e.get("metrics") else None,
            }
            for e in self.audit()
        ]
        if audit:
            replace_lake_table(self.settings, AUDIT_TABLE, pl.DataFrame(audit, infer_schema_length=None))


def main(argv: list[str] | None = None) -> int:
    """`make repair-audit APPROVER=... REASON=...`: remove a torn last line of the audit trail."""
    import argparse
    import os
    import sys

    parser = argparse.ArgumentParser(description=Registry.repair_torn_line.__doc__)
    parser.add_argument("--approver", default=os.environ.get("REPAIR_APPROVER", ""))
    parser.add_argument("--reason", default=os.environ.get("REPAIR_REASON", ""))
    args = parser.parse_args(argv)
    try:
        event = Registry(Settings.from_env()).repair_torn_line(args.approver, args.reason)
    except (ValueError, RegistryTampered, FileNotFoundError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(
        f"removed a torn line of {event['removed_bytes']} bytes (kept in {event['kept_at']}); recorded as "
        f"{event['event']} by {event['actor']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# A pickle names the module of each class it holds. The blend's class lived in
# resources.ml.training before resources/ml was grouped into packages; a lakehouse's registered
# artifacts keep that name, and their sha256 is sealed, so the name is resolved here, not rewritten.
MOVED_MODULES = {"resources.ml.training": "resources.ml.model.training"}


def name_moved_modules() -> None:
    for old, new in MOVED_MODULES.items():
        if old not in sys.modules:
            sys.modules[old] = importlib.import_module(new)
