"""A report on disk: its HTML with a title banner, the JSON sidecar the index, checks and metadata
are built from, and the hash of its inputs that lets a re-run skip an unchanged month."""

from __future__ import annotations

import hashlib
import html
import json
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from resources.core.parquet_io import write_text_atomic
from resources.monitoring.samples import IN_SAMPLE

# Bump when the HTML a report produces changes for the same inputs: forces a rebuild.
REPORT_FORMAT = 2


def inputs_sha256(frames: list[pl.DataFrame], extra: dict) -> str:
    """What a report depends on: its data (row hashes, column names and types), its settings, the
    report format and the Evidently version. Equal hash = same HTML, so the run can be skipped."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for frame in frames:
        digest.update(json.dumps([frame.columns, [str(t) for t in frame.dtypes]]).encode())
        digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    digest.update(
        json.dumps(
            {**extra, "format": REPORT_FORMAT, "evidently": version("evidently")}, sort_keys=True, default=str
        ).encode()
    )
    return digest.hexdigest()


def sidecar_path(reports_dir: Path, kind: str, period: str) -> Path:
    return reports_dir / kind / f"{kind}_{period}.json"


def unchanged(reports_dir: Path, kind: str, period: str, digest: str) -> dict | None:
    """The existing sidecar if its HTML exists and was built from these exact inputs."""
    path = sidecar_path(reports_dir, kind, period)
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a hand-edited or truncated sidecar: rebuild
    html_ok = meta.get("html") is None or (reports_dir / meta["html"]).exists()
    return meta if meta.get("inputs_sha256") == digest and html_ok else None


def write_report(snapshot, reports_dir: Path, kind: str, period: str, summary: dict, title: str) -> Path:
    """HTML (with ``title`` as its <title> and a banner) plus a JSON sidecar (period, model,
    sample, headline numbers) that the index is built from."""
    target = reports_dir / kind / f"{kind}_{period}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    page = snapshot.get_html_str(as_iframe=False)
    colour = "#b00020" if summary.get("sample") == IN_SAMPLE else "#1b5e20"
    banner = (
        f'<div id="monitoring-banner" style="font:600 15px sans-serif;padding:.6em 1em;color:#fff;'
        f'background:{colour}">{html.escape(title)}</div>'
    )
    page = page.replace("<head>", f"<head>\n<title>{html.escape(title)}</title>", 1)
    page = page.replace("<body>", f"<body>\n{banner}", 1)
    write_text_atomic(target, page)
    write_sidecar(
        reports_dir,
        kind,
        period,
        {**summary, "title": title, "html": str(target.relative_to(reports_dir)), "bytes": target.stat().st_size},
    )
    return target


def reuse_if_unchanged(reports_dir: Path, kind: str, period: str, digest: str, summary: dict, log) -> dict | None:
    """The report's sidecar brought up to date with ``summary`` when its inputs are unchanged (its
    HTML is kept and Evidently is not run again); None when it must be built."""
    previous = unchanged(reports_dir, kind, period, digest)
    if previous is None:
        return None
    log(f"{period}: {kind} inputs unchanged (sha256 {digest[:12]}): Evidently run skipped")
    return write_sidecar(
        reports_dir, kind, period, {**previous, **summary, "inputs_sha256": digest, "evidently_skipped": True}
    )


def write_sidecar(reports_dir: Path, kind: str, period: str, summary: dict) -> dict:
    sidecar = {
        "kind": kind,
        "period": period,
        "html": None,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **summary,
    }
    path = sidecar_path(reports_dir, kind, period)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(sidecar, indent=2, sort_keys=True, default=str))
    return sidecar


def read_sidecars(reports_dir: Path) -> list[dict]:
    entries = []
    for sidecar in sorted(reports_dir.glob("*/*.json")):
        try:
            meta = json.loads(sidecar.read_text())
        except json.JSONDecodeError:
            continue  # a truncated sidecar is rebuilt by the next run of its month
        if meta.get("html") and not (reports_dir / meta["html"]).exists():
            continue
        entries.append(meta)
    return entries
