"""Backup and restore of what cannot be rebuilt.

    make backup DEST=/backups/2026-11-22      # a consistent, verifiable copy with a manifest
    make restore SRC=/backups/2026-11-22      # into an empty lakehouse root, then `make run`

Kept: every delivery as ingested (``raw/``, ``raw_archive/``, ``quarantine/``, the volume-override
audit), the model registry (records, sealed audit, artifacts and their monitoring references),
archived scores, monitoring history and alerts, the catalog's publish log, analysts' sandboxes.
Everything else (warehouse, catalog versions, features, scores, reports) is derived: `make run`
rebuilds it from the restored zones, and the restored production model scores again.

Never kept: secrets. The keys live beside the root (``<root>.secrets/``) or in the environment and
belong in the operator's secret store; a restore needs the same keys (the registry's seals and the
pseudonymized tail numbers depend on them), and says so when they are missing or different.

The backup takes the registry lock and the warehouse lock for its duration, so no dbt run,
publish or registry write changes what it copies. ``manifest.json`` holds each file's sha256
and size and a MAC over all of it, keyed with the registry key (which the operator holds and a
restore needs anyway): a restore checks the MAC, that every path stays inside the root and under
what a backup keeps, and every file, before it writes anything, and refuses a forged manifest, a
missing, extra or altered file by name.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import shutil
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from resources.core.parquet_io import sha256_file
from resources.core.settings import ENV_MARKER, Settings
from resources.ml.registry.chain import mac as manifest_mac  # the registry's HMAC over canonical JSON

MANIFEST = "manifest.json"
KEPT = (
    "raw",
    "raw_archive",
    "quarantine",
    "ml/registry",
    "ml/models",
    "ml/scores_archive",
    "ml/scores_archive_nowcast_2h",
    "monitoring",
    "sandbox",
    "published/_history.jsonl",
    ENV_MARKER,
)
SKIPPED_NAMES = (".lock", ".warehouse.lock", ".publish.lock")


class BackupError(RuntimeError):
    pass


def files_to_keep(root: Path) -> list[Path]:
    out = []
    for entry in KEPT:
        path = root / entry
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.name not in SKIPPED_NAMES and not p.name.endswith(".tmp")
            ]
    return out


def registry_key(settings: Settings, create: bool = False) -> bytes:
    """The registry key: from the environment or the secrets folder; generated (dev) only when a
    backup is made of a lakehouse that has none yet, never on restore or verify."""
    from resources.core.secrets_store import load_or_create_key, secrets_dir
    from resources.ml.registry.chain import KEY_ENV

    if create:
        return load_or_create_key(
            settings, KEY_ENV, "registry.key", sealed=settings.root / "ml" / "registry" / "audit.jsonl"
        )
    stored = secrets_dir(settings) / "registry.key"
    key = (os.environ.get(KEY_ENV, "").strip() or (stored.read_text().strip() if stored.exists() else "")).encode()
    if not key:
        raise BackupError(
            f"no registry key: neither {KEY_ENV} nor {stored}. Bring the keys from your secret "
            "store first: a backup is authenticated with it"
        )
    return key


def unsafe_path(rel: str) -> str | None:
    """Why a manifest path may not be restored, or None: relative, no '..', under what backups keep."""
    path = PurePosixPath(rel)
    if not rel or path.is_absolute() or "\\" in rel or any(part in ("", ".", "..") for part in rel.split("/")):
        return "not a plain relative path inside the lakehouse"
    if not any(rel == kept or rel.startswith(kept + "/") for kept in KEPT):
        return "not something a backup keeps"
    return None


def backup(settings: Settings, dest: Path) -> dict:
    from resources.ml.registry.storage import registry_lock
    from resources.warehouse.lock import warehouse_lock

    dest = Path(dest).expanduser().resolve()
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: a backup goes into a new folder")
    if dest.is_relative_to(settings.root):
        raise BackupError(f"{dest} is inside the lakehouse {settings.root}: back up elsewhere")
    started = time.perf_counter()
    files: dict[str, dict] = {}
    with ExitStack() as stack:
        # The registry's order: its writers hold the registry lock while they export to the
        # warehouse lake (the warehouse lock); taking them the other way round could deadlock.
        stack.enter_context(registry_lock(settings))
        stack.enter_context(warehouse_lock(settings))
        for src in files_to_keep(settings.root):
            rel = src.relative_to(settings.root).as_posix()
            target = dest / "data" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
            files[rel] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
    manifest = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": settings.env,
        "source_root": settings.root.name,
        "files": files,
        "bytes": sum(f["bytes"] for f in files.values()),
        "seconds": round(time.perf_counter() - started, 2),
    }
    manifest["mac"] = manifest_mac(registry_key(settings, create=True), manifest)
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def verify(src: Path, key: bytes) -> dict:
    """The manifest, after checking its MAC with the registry key, every path and every file
    (forged, missing, extra or altered ones are named)."""
    src = Path(src).expanduser().resolve()
    try:
        manifest = json.loads((src / MANIFEST).read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("no file list")
    except (OSError, ValueError, RecursionError) as exc:
        raise BackupError(f"{src / MANIFEST}: not a readable backup manifest ({exc})") from None
    mac = manifest.get("mac")
    if not isinstance(mac, str) or not hmac.compare_digest(mac, manifest_mac(key, manifest)):
        raise BackupError(
            f"{src / MANIFEST}: its MAC does not verify with the registry key (forged or edited, "
            "or made with other keys); nothing restored"
        )
    problems = [f"{rel}: {why}" for rel in sorted(manifest["files"]) if (why := unsafe_path(rel))]
    if problems:
        raise BackupError(f"backup {src} refused, nothing restored: " + "; ".join(problems[:20]))
    for rel, meta in sorted(manifest["files"].items()):
        path = src / "data" / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != meta["bytes"] or sha256_file(path) != meta["sha256"]:
            problems.append(f"{rel}: sha256 does not match the manifest (altered or truncated)")
    listed = set(manifest["files"])
    extra = [p.relative_to(src / "data").as_posix() for p in (src / "data").rglob("*") if p.is_file()]
    problems += [f"{rel}: not in the manifest" for rel in sorted(set(extra) - listed)]
    if problems:
        raise BackupError(f"backup {src} refused, nothing restored: " + "; ".join(problems[:20]))
    return manifest


def restore(settings: Settings, src: Path) -> dict:
    manifest = verify(src, registry_key(settings))
    root = settings.root
    if root.exists() and any(p.name != ENV_MARKER for p in root.iterdir()):
        raise BackupError(f"{root} is not empty: restore into an empty lakehouse root (LAKEHOUSE_ROOT)")
    if manifest["environment"] != settings.env:
        raise BackupError(f"the backup is of a {manifest['environment']} lakehouse; this is {settings.env}")
    _check_keys(settings, Path(src).expanduser().resolve() / "data")  # before anything is written
    started = time.perf_counter()
    for rel in manifest["files"]:
        target = root / rel
        if not target.resolve().is_relative_to(root.resolve()):  # checked in verify; kept as the last word
            raise BackupError(f"{rel}: resolves outside {root}; refusing to write it")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(src) / "data" / rel, target)
    if (root / "ml" / "registry" / "audit.jsonl").exists():
        from resources.ml.registry.storage import Registry, registry_lock

        with registry_lock(settings):  # the restored chain is now the one its anchor seals
            Registry(settings).anchor_head()
    return {**manifest, "restore_seconds": round(time.perf_counter() - started, 2)}


def _check_keys(settings: Settings, data: Path) -> None:
    """The backup's registry must verify with the keys this root will use (same chain, same
    seals); otherwise nothing is restored and the message says which keys to bring back."""
    from resources.ml.registry.chain import verify_chain, verify_record

    audit = data / "ml" / "registry" / "audit.jsonl"
    if not audit.exists():
        return
    try:
        key = registry_key(settings)  # read, never generate: a new random key would only mismatch later
        verify_chain(key, [line for line in audit.read_text().splitlines() if line.strip()], audit)
        for record in sorted((data / "ml" / "registry" / "models").glob("*.json")):
            verify_record(key, json.loads(record.read_text()), record)
    except Exception as exc:  # noqa: BLE001 - any failure here means the keys are not the backup's
        raise BackupError(
            f"the backup's registry does not verify with the keys for {settings.root} ({exc}); "
            f"nothing restored. Bring the keys from your secret store into {settings.secrets_dir} "
            "or the environment (LAKEHOUSE_REGISTRY_KEY, LAKEHOUSE_PSEUDONYM_KEY), then restore."
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resources.core.backup", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["backup", "restore", "verify"])
    parser.add_argument("path", nargs="?", default=os.environ.get("BACKUP_PATH", ""))
    args = parser.parse_args(argv)
    if not args.path.strip():
        print("give the backup folder: make backup DEST=... / make restore SRC=...", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    if settings.remote and args.action != "verify":
        print(
            f"{settings.root} is on object storage: keep its history with the store's own versioning or "
            "replication (e.g. S3 bucket versioning), not with a file copy",
            file=sys.stderr,
        )
        return 2
    try:
        if args.action == "backup":
            m = backup(settings.ensure(), Path(args.path))
            print(
                f"backup of {settings.root}: {len(m['files'])} files, {m['bytes'] / 2**20:.1f} MiB in "
                f"{m['seconds']} s -> {args.path} (secrets are not in it)"
            )
        elif args.action == "verify":
            m = verify(Path(args.path), registry_key(settings))
            print(f"backup {args.path}: {len(m['files'])} files verify")
        else:
            m = restore(settings, Path(args.path))
            print(
                f"restored {len(m['files'])} files into {settings.root} in {m['restore_seconds']} s; "
                "now `make run` rebuilds everything derived"
            )
    except BackupError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
