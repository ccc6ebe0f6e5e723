"""Publishing the analyst catalog, side by side: today's code and an earlier revision's, each on its
own copy of one built lakehouse (default: the repository's, after `make run`).

    .venv/bin/python benchmarks/publish.py [--root lakehouse] [--against 93d4aa3] [--rounds 3] [--link]

The earlier revision runs from a `git worktree` of it, in a child process, on its own copy, so
neither sees the other's versions; its copy first loses the tables today's publishes write into
the warehouse. Prints each round's seconds and the version's size, then the
medians and their ratio. 93d4aa3 is the last revision that copied every published table into
each version. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The child first imports the code location, as the run process that publishes has (pandas and
# the rest are loaded before any asset runs); only publish_catalog is timed.
CHILD = """
import json, sys, time
from pathlib import Path
import assets.definitions
from resources.catalog.publish import product_views, publish_catalog
from resources.core.settings import Settings
from resources.ml.lake import catalog_views as ml_views
from resources.monitoring.catalog import catalog_views as monitoring_views
from resources.raw.archive import catalog_views as raw_views

settings = Settings(root=Path(sys.argv[1]), env="dev")
external = [*ml_views(settings), *monitoring_views(settings), *raw_views(settings), *product_views(settings)[0]]
started = time.perf_counter()
result = publish_catalog(settings, external)
print(json.dumps({"seconds": time.perf_counter() - started, "bytes": result.bytes_published}))
"""


def _link_or_copy(src: str, dst: str) -> None:
    """Files a publish only reads or replaces are linked; the catalog (changed in place) is copied."""
    if ".sqlite" in Path(src).name:
        shutil.copy2(src, dst)
    else:
        os.link(src, dst)


def copy_lakehouse(source: Path, target: Path, link: bool = False) -> Path:
    shutil.copytree(source, target / "lakehouse", symlinks=True, copy_function=_link_or_copy if link else shutil.copy2)
    secrets = source.with_name(f"{source.name}.secrets")
    if secrets.exists():
        shutil.copytree(secrets, target / "lakehouse.secrets")
    return target / "lakehouse"


def as_before(root: Path) -> None:
    """The earlier revision's input: a warehouse without the tables today's publishes write into
    it (the catalog's own, the declared ones), which that revision would copy in as well."""
    from resources.catalog.publish import PLATFORM_SCHEMAS
    from resources.core.settings import Settings
    from resources.warehouse.lock import open_warehouse, warehouse_lock

    settings = Settings(root=root, env="dev")
    with warehouse_lock(settings), open_warehouse(settings, read_only=False) as con:
        for table in ("ml.feature_definitions", "ml.leakage_audit", "monitoring.daily_metrics", "monitoring.alerts"):
            con.execute(f"drop table if exists {table}")
        schemas = con.execute(
            "select distinct table_schema from information_schema.tables where table_catalog = 'warehouse'"
        ).fetchall()
        for (schema,) in schemas:
            if schema == "catalog" or schema not in PLATFORM_SCHEMAS:
                con.execute(f'drop schema "{schema}" cascade')


def publish(code: Path, root: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root)],
        cwd=code,
        env={"PYTHONPATH": str(code), "DO_NOT_TRACK": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "lakehouse")
    parser.add_argument("--against", default="93d4aa3")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--link",
        action="store_true",
        help="hard-link the data files instead of copying them (a lakehouse too large to copy twice)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        tmp = Path(tmp)
        old_code = tmp / "code"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old_code), args.against], check=True)
        try:
            roots = {
                "now": copy_lakehouse(args.root.resolve(), tmp / "now", args.link),
                args.against: copy_lakehouse(args.root.resolve(), tmp / "old", args.link),
            }
            as_before(roots[args.against])
            code = {"now": REPO, args.against: old_code}
            times: dict[str, list[float]] = {k: [] for k in roots}
            for i in range(args.rounds):
                for name in roots:  # alternating, so load changes hit both alike
                    out = publish(code[name], roots[name])
                    times[name].append(out["seconds"])
                    print(
                        f"round {i + 1} {name}: {out['seconds']:.2f} s, version {out['bytes'] / 1e6:.1f} MB", flush=True
                    )
            med = {k: statistics.median(v) for k, v in times.items()}
            print(
                f"publish: now {med['now']:.2f} s, {args.against} {med[args.against]:.2f} s "
                f"({med[args.against] / med['now']:.1f}x faster now); medians of {args.rounds}"
            )
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_code)], check=False)


if __name__ == "__main__":
    main()
