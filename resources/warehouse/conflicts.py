"""Telling a DuckLake commit conflict from a real failure, in dbt's run_results.json."""

from __future__ import annotations

FAILED = ("error", "fail", "runtime error")
# DuckLake's messages when another transaction committed the same table or view first. The
# second is how DuckLake 0.3 (DuckDB 1.4.4) fails while checking a commit against the changes
# another writer committed meanwhile (its ParseCatalogEntry cannot read every entry of that
# list): seen only with two writers at once, and the build succeeds when repeated.
CONFLICT = ("Transaction conflict", "Failed to parse catalog entry")


def _failed(results: dict) -> list[dict]:
    return [r for r in results.get("results", []) if str(r.get("status", "")).lower() in FAILED]


def only_commit_conflicts(results: dict) -> bool:
    """True when something failed and every failure is a commit conflict (skipped nodes follow
    from those): building again may succeed. A failed test or any other error is a real failure."""
    failed = _failed(results)
    return bool(failed) and all(any(c in (r.get("message") or "") for c in CONFLICT) for r in failed)


def failure_summary(results: dict, limit: int = 5) -> str:
    failed = _failed(results)
    lines = [f"{r.get('unique_id')}: {(r.get('message') or '').strip()[:300]}" for r in failed[:limit]]
    more = f" (and {len(failed) - limit} more)" if len(failed) > limit else ""
    return "; ".join(lines) + more if lines else "no failed node in run_results.json"


def is_commit_conflict(exc: BaseException) -> bool:
    """A DuckDB error that is a DuckLake commit conflict (another writer committed first)."""
    return any(c in str(exc) for c in CONFLICT)
