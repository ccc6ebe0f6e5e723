"""Scale-factor data sets (resources/raw/scale_data.py): SF copies that the ordinary pipeline ingests."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from resources.core.settings import Settings
from resources.raw.ingest import apply_contract, read_delivery
from resources.raw.scale_data import (
    FLIGHT_STRIDE,
    ScaleDataError,
    _read_text_frame,
    generate,
    parse_sf,
    scaled_sources_doc,
)
from resources.raw.sources import DEFAULT_SOURCES_FILE, load_sources
from resources.raw.zone import ingest

pytestmark = pytest.mark.fast  # `make test-fast`: no Dagster run, no dbt build

# A winter weekday, Thanksgiving (the smallest day: 634 flights) and a Saturday.
DAYS = [date(2013, 1, 2), date(2013, 11, 28), date(2013, 1, 19)]


@pytest.fixture(scope="module")
def embedded() -> dict[str, pl.DataFrame]:
    base = load_sources(DEFAULT_SOURCES_FILE)
    flights = _read_text_frame(base["flights"].delivery_path())
    day = pl.date(pl.col("year").cast(pl.Int32), pl.col("month").cast(pl.Int32), pl.col("day").cast(pl.Int32))
    return {
        "flights": flights.with_columns(day.alias("__day")),
        "planes": _read_text_frame(base["planes"].delivery_path()),
    }


@pytest.fixture(scope="module")
def sf2(tmp_path_factory):
    # Quotes, $() and backticks in the folder name must survive the generated YAML.
    out = tmp_path_factory.mktemp("scale") / "sf2 'q' \"d\" $(echo x) `y`"
    return generate(2, out, DAYS)


def flight_ids(frame: pl.DataFrame) -> pl.Series:
    return frame.select(
        pl.format(
            "{}-{}-{}-{}-{}-{}-{}",
            "year",
            "month",
            "day",
            "carrier",
            "flight",
            "origin",
            pl.col("sched_dep_time").str.zfill(4),
        )
    )[:, 0]


def test_sf2_doubles_each_day_with_distinct_flights_and_matching_planes(sf2, embedded):
    sources = load_sources(Path(sf2.sources_file))
    assert sf2.days == 3
    planes = _read_text_frame(Path(sources["planes"].delivery_path()))
    assert planes.height == 2 * embedded["planes"].height == sf2.planes
    assert planes["tailnum"].n_unique() == planes.height
    known = set(embedded["planes"]["tailnum"])
    total = 0
    for day in DAYS:
        path = sources["flights"].delivery_path(day)
        assert path == Path(sf2.root) / "flights" / f"flights_{day}.csv" and path.exists()
        got = _read_text_frame(path)
        original = embedded["flights"].filter(pl.col("__day") == day).drop("__day")
        assert got.height == 2 * original.height > 0
        total += got.height
        ids = flight_ids(got)
        assert ids.n_unique() == got.height, f"{day}: flight_id repeats"
        first, copy = got.head(original.height), got.tail(original.height)
        assert first.equals(original)
        assert copy["flight"].cast(pl.Int64).to_list() == [f + FLIGHT_STRIDE for f in original["flight"].cast(pl.Int64)]
        # Missing tail numbers stay missing; a copy's tail is in the planes exactly when the original's is.
        for tail, orig in zip(copy["tailnum"], original["tailnum"]):
            if orig == "NA":
                assert tail == "NA"
            else:
                assert tail == f"{orig}-1"
                assert (tail in set(planes["tailnum"])) == (orig in known)
        assert copy.drop("flight", "tailnum").equals(original.drop("flight", "tailnum"))
        assert (copy["tailnum"] == "NA").sum() == (original["tailnum"] == "NA").sum()
    assert sf2.flights == total
    # A copied aircraft is the same aircraft under its copy's tail number.
    copied = planes.filter(pl.col("tailnum").str.ends_with("-1"))
    assert copied.with_columns(pl.col("tailnum").str.strip_suffix("-1")).equals(embedded["planes"])


def test_generated_sources_change_only_locations_and_scaled_floors(sf2):
    base, scaled = load_sources(DEFAULT_SOURCES_FILE), load_sources(Path(sf2.sources_file))
    assert scaled.keys() == base.keys()
    for name, spec in scaled.items():
        b = base[name]
        assert (spec.columns, spec.partitioning, spec.format, spec.null_values) == (
            b.columns,
            b.partitioning,
            b.format,
            b.null_values,
        ), name
        assert spec.location.startswith(sf2.root) and "{embedded}" not in spec.location
        scaled_copies = ("flights", "planes", "schedules")  # the timetable is part of the flights file
        factor = 2 if name in scaled_copies else 1
        assert spec.volume.min_rows == b.volume.min_rows * factor, name
        assert (spec.volume.max_drop, spec.volume.trailing_days) == (b.volume.max_drop, b.volume.trailing_days)
        if name not in scaled_copies:  # copied as delivered
            assert spec.delivery_path().read_bytes() == b.delivery_path().read_bytes()
    assert scaled["flights"].one_file_per_day and not base["flights"].one_file_per_day
    assert scaled["schedules"].location == scaled["flights"].location


def test_pipeline_ingests_scaled_days_under_the_contract(sf2, tmp_path, embedded):
    """The ordinary raw ingestion, pointed at the generated sources.yml, takes every row."""
    spec = load_sources(Path(sf2.sources_file))["flights"]
    settings = Settings(root=(tmp_path / "lakehouse").resolve()).ensure()
    summary = ingest(settings, spec, "scale-test", DAYS[0], date(2013, 1, 3))
    original = embedded["flights"].filter(pl.col("__day") == DAYS[0]).height
    assert (summary.delivered, summary.raw_rows, summary.quarantined) == (2 * original, 2 * original, 0)
    check = summary.volume_checks[0]
    assert check.passed and check.min_rows == 800


def test_sf1_is_the_embedded_data(tmp_path, embedded):
    out = generate(1, tmp_path / "sf1", DAYS[:2])
    base = load_sources(DEFAULT_SOURCES_FILE)["flights"]
    spec = load_sources(Path(out.sources_file))["flights"]
    assert spec.volume.min_rows == base.volume.min_rows
    whole = apply_contract(base, read_delivery(base, base.delivery_path())).valid
    assert (
        load_sources(Path(out.sources_file))["planes"].delivery_path().read_bytes()
        == load_sources(DEFAULT_SOURCES_FILE)["planes"].delivery_path().read_bytes()
    )
    for day in DAYS[:2]:
        # What the pipeline reads from the day's file: the embedded rows of that day, typed alike.
        got = apply_contract(spec, read_delivery(spec, spec.delivery_path(day)))
        assert got.rejected.height == 0
        expected = whole.filter(pl.col("_delivery_date") == day).drop("_source_row")
        assert got.valid.drop("_source_row").equals(expected)
        assert expected.height > 600


def test_bad_input_is_refused_by_name(tmp_path, embedded):
    with pytest.raises(ScaleDataError, match="whole number"):
        parse_sf("2; rm -rf /")
    for bad in ("0", "-1", "1.5", "", "1001"):
        with pytest.raises(ScaleDataError):
            parse_sf(bad)
    assert parse_sf(" 10 ") == 10
    with pytest.raises(ScaleDataError, match="brace"):
        generate(2, tmp_path / "{date}", DAYS[:1])
    with pytest.raises(ScaleDataError, match="outside the flights partitions"):
        generate(2, tmp_path / "late", [date(2014, 1, 1)])
    # A flight number at the stride would collide with copy 1 of flight 0: refused, naming the row.
    flights = (
        embedded["flights"]
        .drop("__day")
        .with_columns(
            pl.when(pl.int_range(pl.len()) == 4)
            .then(pl.lit(str(FLIGHT_STRIDE)))
            .otherwise(pl.col("flight"))
            .alias("flight")
        )
    )
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    flights.write_csv(base_dir / "flights.csv")
    text = DEFAULT_SOURCES_FILE.read_text().replace("{embedded}/flights.csv.zip", str(base_dir / "flights.csv"))
    (base_dir / "sources.yml").write_text(text)
    with pytest.raises(ScaleDataError, match=r"data row 5, column 'flight': '10000'"):
        generate(2, tmp_path / "out", DAYS[:1], base_sources=base_dir / "sources.yml")


def test_scaled_doc_keeps_ratios():
    doc = {
        "sources": {
            "flights": {"location": "x", "volume": {"min_rows": 400, "max_drop": 0.5}},
            "airlines": {"location": "y", "volume": {"min_rows": 10}},
        }
    }
    out = scaled_sources_doc(doc, 100, {"flights": "/d/flights_{date}.csv"})
    assert out["sources"]["flights"] == {
        "location": "/d/flights_{date}.csv",
        "volume": {"min_rows": 40_000, "max_drop": 0.5},
    }
    assert out["sources"]["airlines"] == {"location": "y", "volume": {"min_rows": 10}}
    assert doc["sources"]["flights"]["volume"]["min_rows"] == 400  # the base document is left alone


def test_benchmark_measures_the_whole_process_tree(tmp_path):
    """The instrument itself: a parent holding ~200 MiB whose child holds ~150 MiB at the same
    time must read as one tree of >= 340 MiB."""
    spec = importlib.util.spec_from_file_location("bench_scale", Path(__file__).parents[1] / "benchmarks" / "scale.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_scale", bench)  # its dataclasses resolve annotations through it
    spec.loader.exec_module(bench)
    child = "import time; b = bytearray(150 * 2**20); time.sleep(2)"
    parent = (
        f"import subprocess, sys; b = bytearray(200 * 2**20); "
        f"sys.exit(subprocess.run([sys.executable, '-c', {child!r}]).returncode)"
    )
    m = bench.measure(
        [sys.executable, "-c", parent], tmp_path, dict(os.environ), tmp_path / "log", tmp_path / "progress.json"
    )
    assert m.returncode == 0 and m.samples >= 3
    assert m.peak_processes == 2
    assert m.peak_tree_bytes >= 340 * 2**20
    assert m.largest_process_bytes >= 200 * 2**20
    assert json.loads((tmp_path / "progress.json").read_text())["processes"] >= 1
    failed = bench.measure([sys.executable, "-c", "raise SystemExit(3)"], tmp_path, dict(os.environ), tmp_path / "log")
    assert failed.returncode == 3
