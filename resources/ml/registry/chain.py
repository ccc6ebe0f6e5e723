"""Tamper evidence for the model registry: a keyed hash chain over the audit trail and a keyed MAC
on every training record.

Editing files must not be able to change which model is in production. Each audit event carries
``prev`` (the SHA-256 of the previous line as written) and ``mac`` (HMAC-SHA256 over its canonical
JSON, ``prev`` included), with a key that lives outside the lakehouse (resources/core/secrets_store.py).
Appending a forged ``promoted`` line, editing an actor, deleting or reordering a line, or writing a
record for an unregistered model all fail verification, naming the file and line. Only a holder of
the key could forge, and the key is never in the lakehouse's readable zones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

GENESIS = "0" * 64
KEY_ENV = "LAKEHOUSE_REGISTRY_KEY"


class RegistryTampered(RuntimeError):
    """A registry file does not verify: it was edited outside the registry's own code."""


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def mac(key: bytes, obj: dict) -> str:
    return hmac.new(key, canonical({k: v for k, v in obj.items() if k != "mac"}), hashlib.sha256).hexdigest()


def line_hash(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


def seal_event(key: bytes, event: dict, prev_line: str | None) -> str:
    """The line to append: the event with its link to the previous line and its MAC."""
    sealed = {**event, "prev": line_hash(prev_line) if prev_line is not None else GENESIS}
    sealed["mac"] = mac(key, sealed)
    return json.dumps(sealed, sort_keys=True)


def verify_chain(key: bytes, lines: list[str], path: Path) -> list[dict]:
    events, prev = [], None
    for number, line in enumerate(lines, start=1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RegistryTampered(f"{path} line {number}: not JSON ({exc.msg})") from None
        expected_prev = line_hash(prev) if prev is not None else GENESIS
        if event.get("prev") != expected_prev:
            raise RegistryTampered(
                f"{path} line {number}: does not follow line {number - 1} "
                "(a line was inserted, removed, reordered or edited)"
            )
        if not hmac.compare_digest(str(event.get("mac", "")), mac(key, event)):
            raise RegistryTampered(
                f"{path} line {number}: MAC does not verify (event "
                f"{event.get('event')!r} for {event.get('version')!r} was not written by the registry)"
            )
        events.append(event)
        prev = line
    return events


def seal_head(key: bytes, lines: list[str]) -> dict:
    """The anchor of the chain's head: how many lines it has and the hash of the last one, sealed.
    Kept outside the lakehouse (beside the key), so cutting lines off the end of the chain, or
    removing it, cannot pass for an older, valid state."""
    head = {"lines": len(lines), "last": line_hash(lines[-1]) if lines else GENESIS}
    return {**head, "mac": mac(key, head)}


def verify_head(key: bytes, head: dict, lines: list[str], path: Path, anchor: Path) -> None:
    if not hmac.compare_digest(str(head.get("mac", "")), mac(key, head)):
        raise RegistryTampered(f"{anchor}: the chain's anchor does not verify (not written by the registry)")
    if len(lines) < head["lines"]:
        raise RegistryTampered(
            f"{path}: holds {len(lines)} lines, but the chain's anchor ({anchor}) says {head['lines']}: lines "
            "were cut off its end (or the file removed); refusing to read an older state as the current one. "
            "Restore the registry from a backup"
        )
    # Longer is fine (a run that died between its append and the anchor's update; every line is
    # verified by its own MAC): the anchored line must still be where it was.
    if head["lines"] and line_hash(lines[head["lines"] - 1]) != head["last"]:
        raise RegistryTampered(f"{path}: line {head['lines']} is not the line the chain's anchor ({anchor}) sealed")


def seal_record(key: bytes, record: dict) -> dict:
    return {**record, "mac": mac(key, record)}


def verify_record(key: bytes, record: dict, path: Path) -> dict:
    if not hmac.compare_digest(str(record.get("mac", "")), mac(key, record)):
        raise RegistryTampered(f"{path}: training record MAC does not verify (not written by the registry)")
    return record
