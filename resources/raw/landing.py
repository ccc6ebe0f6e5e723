"""What landed since the last look: a source's one-file-per-day landing location, by content.

A sensor keeps a cursor of ``{file name: [size, mtime_ns, sha256]}``. A file is reported when it
is new or its *content* changed: size and mtime only decide whether to re-hash (a touched but
identical file is not a re-delivery), so an unchanged file is never reported twice and a
re-delivery once. Only names that parse to a day inside the source's partitions count; anything
else in the folder is listed as ignored, never guessed at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from resources.core.parquet_io import sha256_file
from resources.raw.sources import SourceSpec


@dataclass(frozen=True)
class Landed:
    day: date
    path: Path
    sha256: str
    redelivery: bool  # a file of that name was seen before with other content


def _pattern(spec: SourceSpec) -> tuple[Path, re.Pattern]:
    template = spec.delivery_path(date(2000, 1, 1)).as_posix().replace("2000-01-01", "{date}")
    folder = Path(template).parent
    if "{date}" in folder.as_posix():
        raise ValueError(f"source {spec.name!r}: {{date}} must be in the file name, not the folder ({spec.location})")
    name = re.escape(Path(template).name).replace(re.escape("{date}"), r"(\d{4}-\d{2}-\d{2})")
    return folder, re.compile(f"^{name}$")


def scan(spec: SourceSpec, cursor: str | None) -> tuple[list[Landed], str, list[str]]:
    """(files new or changed since ``cursor``, the new cursor, ignored names)."""
    if not spec.one_file_per_day or spec.partitioning is None:
        raise ValueError(f"source {spec.name!r} has no one-file-per-day location ({spec.location})")
    seen: dict[str, list] = json.loads(cursor) if cursor else {}
    folder, pattern = _pattern(spec)
    landed, ignored, now = [], [], {}
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if path.name.startswith(".") or not path.is_file():
            continue  # hidden: a writer's temporary file
        match = pattern.match(path.name)
        day = None
        if match:
            try:
                day = date.fromisoformat(match.group(1))
            except ValueError:
                day = None
        if day is None or not (spec.partitioning.start <= day < spec.partitioning.end):
            ignored.append(path.name)
            continue
        stat = path.stat()
        before = seen.get(path.name)
        if before and before[0] == stat.st_size and before[1] == stat.st_mtime_ns:
            now[path.name] = before
            continue
        digest = sha256_file(path)
        now[path.name] = [stat.st_size, stat.st_mtime_ns, digest]
        if not before or before[2] != digest:
            landed.append(Landed(day, path, digest, redelivery=before is not None))
    # Names that disappeared keep their entry: the same file put back is not a new delivery.
    return landed, json.dumps({**seen, **now}, sort_keys=True), ignored
