"""The delivery volume contract and ragged records, on the plain functions (real parquet, tmp roots)."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml

from resources.core.settings import Settings
from resources.raw.ingest import CUT_REASON, read_delivery
from resources.raw.sources import (
    DEFAULT_SOURCES_FILE,
    ColumnContract,
    DailyPartitioning,
    SourceConfigError,
    SourceSpec,
    VolumeContract,
    load_sources,
)
from resources.raw.volume import VolumeContractError, VolumeOverride, check_volume, read_override_audit
from resources.raw.zone import ingest, raw_path

pytestmark = pytest.mark.fast  # `make test-fast`: no Dagster run, no dbt build

COLUMNS = (ColumnContract("d", "date", nullable=False), ColumnContract("n", "int"))


def daily_spec(folder: Path, volume: VolumeContract | None) -> SourceSpec:
    return SourceSpec(
        name="s",
        description="",
        location=str(folder / "s_{date}.csv"),
        format="csv",
        columns=COLUMNS,
        partitioning=DailyPartitioning(("d",), date(2013, 1, 1), date(2013, 2, 1)),
        volume=volume,
    )


def deliver(folder: Path, day: str, rows: int) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"s_{day}.csv").write_text("d,n\n" + "".join(f"{day},{i}\n" for i in range(rows)))


def write_sources(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load(DEFAULT_SOURCES_FILE.read_text())
    edit(doc["sources"])
    path = tmp_path / "sources.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    "source, volume, message",
    [
        ("flights", {"min_rows": -1}, "source 'flights', field 'volume.min_rows'"),
        ("flights", {"max_drop": 1.5}, "source 'flights', field 'volume.max_drop'"),
        ("flights", {"max_drop": "half"}, "source 'flights', field 'volume.max_drop'"),
        ("flights", {"max_shrink": 1}, "source 'flights', field 'volume.max_shrink'"),
        ("weather", {"trailing_days": 0}, "source 'weather', field 'volume.trailing_days'"),
        ("weather", {"may_be_empty": "no"}, "source 'weather', field 'volume.may_be_empty'"),
        ("planes", {"trailing_days": 7}, "source 'planes', field 'volume.trailing_days': only daily sources"),
        ("airlines", {"min_row": 5}, "source 'airlines', field 'volume.min_row': unknown"),
        ("airports", [100], "source 'airports', field 'volume'"),
    ],
)
def test_a_malformed_volume_names_source_and_field(tmp_path, source, volume, message):
    def edit(sources):
        sources[source]["volume"] = volume

    with pytest.raises(SourceConfigError, match=message.replace("(", r"\(")):
        load_sources(write_sources(tmp_path, edit))


def test_declared_volumes_and_defaults():
    sources = load_sources()
    assert sources["flights"].volume == VolumeContract(400, 0.5, 14, False, 0.2)
    assert sources["weather"].volume.min_rows == 48 and sources["planes"].volume.max_drop == 0.5
    assert all(s.volume is not None and not s.volume.may_be_empty for s in sources.values())


def test_check_volume_rules():
    vc = VolumeContract(min_rows=10, max_drop=0.5, trailing_days=3)
    assert check_volume(vc, None, "f", 9, 0, []).floor == 10  # no history: min_rows alone
    assert not check_volume(vc, None, "f", 9, 0, []).passed
    judged = check_volume(vc, None, "f", 49, 3, [100, 101, 99])
    assert (judged.floor, judged.trailing_median, judged.passed) == (50, 100.0, False)
    assert check_volume(vc, None, "f", 50, 0, [100, 101, 99]).passed
    assert not check_volume(VolumeContract(), None, "f", 0, 0, []).passed  # empty refused by default
    assert check_volume(VolumeContract(min_rows=5, may_be_empty=True), None, "f", 0, 0, [9]).passed
    with pytest.raises(ValueError, match="approver and reason"):
        VolumeOverride.parse(["2013-01-01"], "", "why")
    with pytest.raises(ValueError, match="not a YYYY-MM-DD"):
        VolumeOverride.parse(["01/02/2013"], "a", "b")


def test_a_failing_day_stops_the_whole_window_before_anything_is_written(tmp_path):
    settings = Settings(root=tmp_path / "lh").ensure()
    folder = tmp_path / "in"
    spec = daily_spec(folder, VolumeContract(min_rows=2, max_drop=0.5, trailing_days=3))
    for day, rows in (("2013-01-01", 10), ("2013-01-02", 12), ("2013-01-03", 4), ("2013-01-04", 11)):
        deliver(folder, day, rows)
    with pytest.raises(VolumeContractError) as refused:
        ingest(settings, spec, "run00001", date(2013, 1, 1), date(2013, 1, 5))
    # The window's own earlier days are the trailing history: median(10, 12) = 11 -> floor 6.
    assert "s_2013-01-03.csv for partition 2013-01-03 holds 4 valid rows" in str(refused.value)
    assert "expects 6 or more" in str(refused.value)
    assert str(refused.value).endswith(
        "ops: {raw__s: {config: {allow_volume_override: {days: [2013-01-03], approver: ..., reason: ...}}}}"
    )
    assert not (settings.raw_dir / "s").exists()

    override = VolumeOverride.parse(["2013-01-03"], "ana", "holiday schedule")
    summary = ingest(settings, spec, "run00002", date(2013, 1, 1), date(2013, 1, 5), override=override)
    assert [p.raw_rows for p in summary.partitions] == [10, 12, 4, 11]
    assert [c.overridden for c in summary.volume_checks] == [False, False, True, False]
    audit = read_override_audit(settings)
    assert [(a["partition"], a["raw_rows"], a["expected_min_rows"], a["file"]) for a in audit] == [
        ("2013-01-03", 4, 6, str(folder / "s_2013-01-03.csv"))
    ]


def test_trailing_counts_come_from_existing_partitions(tmp_path):
    settings = Settings(root=tmp_path / "lh").ensure()
    folder = tmp_path / "in"
    spec = daily_spec(folder, VolumeContract(min_rows=1, max_drop=0.25, trailing_days=2))
    for day, rows in (("2013-01-01", 28), ("2013-01-02", 32), ("2013-01-03", 22)):
        deliver(folder, day, rows)
    ingest(settings, spec, "run00001", date(2013, 1, 1), date(2013, 1, 3))
    # Jan 3 alone: its history is the two raw partitions' footers, median(28, 32) = 30, floor 23.
    with pytest.raises(VolumeContractError, match=r"median of the 2 trailing raw partition\(s\) in 2 days, 30 rows"):
        ingest(settings, spec, "run00002", date(2013, 1, 3), date(2013, 1, 4))
    assert not raw_path(settings, "s", date(2013, 1, 3)).exists()
    deliver(folder, "2013-01-03", 23)
    damaged = raw_path(settings, "s", date(2013, 1, 2))
    intact = damaged.read_bytes()
    damaged.write_bytes(b"not parquet")  # a hand-edited partition fails loudly, naming itself
    with pytest.raises(VolumeContractError, match=r"cannot read the row count .*delivery_date=2013-01-02"):
        ingest(settings, spec, "run00003", date(2013, 1, 3), date(2013, 1, 4))
    damaged.write_bytes(intact)
    (check,) = ingest(settings, spec, "run00003", date(2013, 1, 3), date(2013, 1, 4)).volume_checks
    assert (check.rows, check.trailing_median, check.trailing_found, check.floor) == (23, 30.0, 2, 23)


def test_reference_snapshot_may_not_shrink_by_half(tmp_path):
    settings = Settings(root=tmp_path / "lh").ensure()
    csv = tmp_path / "ref.csv"
    spec = SourceSpec(
        name="ref",
        description="",
        location=str(csv),
        format="csv",
        columns=(ColumnContract("k", "string", nullable=False),),
        volume=VolumeContract(min_rows=2, max_drop=0.5),
    )
    csv.write_text("k\n" + "".join(f"k{i}\n" for i in range(10)))
    ingest(settings, spec, "run00001")
    csv.write_text("k\na\nb\nc\n")
    with pytest.raises(VolumeContractError, match="the whole file holds 3 valid rows.*current snapshot, 10 rows"):
        ingest(settings, spec, "run00002")
    assert pl.read_parquet(raw_path(settings, "ref")).height == 10
    with pytest.raises(ValueError, match="takes no days"):
        ingest(settings, spec, "run00003", override=VolumeOverride("a", "b", (date(2013, 1, 1),)))
    ingest(settings, spec, "run00004", override=VolumeOverride("a", "vendor dropped retired codes"))
    assert pl.read_parquet(raw_path(settings, "ref")).height == 3
    assert read_override_audit(settings)[0]["partition"] is None


def test_read_delivery_numbers_records_not_lines(tmp_path):
    spec = SourceSpec(
        name="t",
        description="",
        location="x",
        format="csv",
        columns=(ColumnContract("a", "int"), ColumnContract("b", "string"), ColumnContract("c", "int")),
    )
    path = tmp_path / "t.csv"
    # BOM, CRLF, a quoted newline, a short row, a blank line and a long row with a quote inside.
    path.write_bytes(b'\xef\xbb\xbfa,b,c\r\n1,"two\r\nlines",3\r\n4,5\r\n\r\n6,7,8,"say ""hi"""\r\n9,NA,10')
    df = read_delivery(spec, path)
    assert df["_source_row"].to_list() == [1, 2, 3, 4, 5]
    assert df["b"].to_list() == ["two\r\nlines", "5", None, "7", None]
    assert df["_record_error"].to_list() == [
        None,
        "row has 2 fields, header has 3",
        "row has 0 fields, header has 3",
        'row has 4 fields, header has 3 (beyond the header: ["say \\"hi\\""])',
        CUT_REASON,
    ]
    path.write_bytes(b"a,b,c\n1,2,\xff\n")
    with pytest.raises(Exception, match=r"t\.csv.*not UTF-8"):
        read_delivery(spec, path)


def test_a_redelivery_that_shrinks_a_day_by_more_than_max_shrink_needs_the_override(tmp_path):
    """Finding: re-deliveries 30 % and 45 % smaller passed silently (above the trailing floor)."""
    settings = Settings(root=tmp_path / "lh").ensure()
    folder = tmp_path / "in"
    spec = daily_spec(folder, VolumeContract(min_rows=2, max_drop=0.5, trailing_days=3))
    for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
        deliver(folder, day, 100)
    ingest(settings, spec, "run00001", date(2013, 1, 1), date(2013, 1, 4))
    for rows in (70, 55):  # above the trailing floor of 50, below 80 % of the replaced 100
        deliver(folder, "2013-01-03", rows)
        with pytest.raises(VolumeContractError) as refused:
            ingest(settings, spec, "run00002", date(2013, 1, 3), date(2013, 1, 4))
        assert f"holds {rows} valid rows" in str(refused.value) and "expects 80 or more" in str(refused.value)
        assert "keeps at least 80% of the 100 rows it replaces (max_shrink 0.2" in str(refused.value)
        assert pl.read_parquet(raw_path(settings, "s", date(2013, 1, 3))).height == 100
    deliver(folder, "2013-01-03", 80)  # a fifth fewer is allowed
    ingest(settings, spec, "run00003", date(2013, 1, 3), date(2013, 1, 4))
    deliver(folder, "2013-01-03", 55)
    ingest(
        settings,
        spec,
        "run00004",
        date(2013, 1, 3),
        date(2013, 1, 4),
        override=VolumeOverride.parse(["2013-01-03"], "ana", "carrier withdrew a route"),
    )
    assert pl.read_parquet(raw_path(settings, "s", date(2013, 1, 3))).height == 55
    assert [(a["raw_rows"], a["expected_min_rows"]) for a in read_override_audit(settings)] == [(55, 64)]
    unchecked = daily_spec(folder, VolumeContract(min_rows=2, max_drop=0.5, trailing_days=3, max_shrink=None))
    deliver(folder, "2013-01-03", 51)
    ingest(settings, unchecked, "run00005", date(2013, 1, 3), date(2013, 1, 4))


def test_a_last_row_without_a_line_end_is_quarantined(tmp_path):
    """Finding: with distance last, a final row cut from 733 to 7 (no newline) entered raw as 7 mi."""
    spec = SourceSpec(
        name="t",
        description="",
        location="x",
        format="csv",
        columns=(ColumnContract("origin", "string"), ColumnContract("distance", "int")),
    )
    path = tmp_path / "t.csv"
    path.write_text("origin,distance\nEWR,1400\nLGA,7")
    df = read_delivery(spec, path)
    assert df["_record_error"].to_list()[0] is None
    assert df["_record_error"].to_list()[1].startswith("last row not ended by a line end: it may be cut short")
    path.write_text("origin,distance\nEWR,1400\nLGA")  # cut inside the row: named with its width
    assert read_delivery(spec, path)["_record_error"][1].endswith("(1 fields, header has 2)")
    for whole in ("origin,distance\nEWR,1400\nLGA,733\n", "origin,distance\r\nEWR,1400\r\nLGA,733\r\n"):
        path.write_text(whole)
        assert read_delivery(spec, path)["_record_error"].null_count() == 2
    path.write_text("origin,distance")  # header only, no line end: no row to doubt
    assert read_delivery(spec, path).height == 0


def test_rows_repeated_within_a_delivery_are_quarantined_naming_the_first(tmp_path):
    """Finding: 100 duplicated rows entered raw (956 -> 1,056) and staging."""
    from resources.raw.ingest import apply_contract

    spec = SourceSpec(
        name="t",
        description="",
        location="x",
        format="csv",
        columns=(ColumnContract("k", "string"), ColumnContract("n", "int")),
    )
    path = tmp_path / "t.csv"
    path.write_text('k,n\na,1\nb,2\na,1\n"a",1\na,2\nb,2\n,\n,\n')
    result = apply_contract(spec, read_delivery(spec, path))
    assert result.valid["_source_row"].to_list() == [1, 2, 5, 7]
    assert dict(zip(result.rejected["_source_row"], result.rejected["_reason"])) == {
        3: "row repeats row 1 of the delivery exactly (a duplicate)",
        4: "row repeats row 1 of the delivery exactly (a duplicate)",
        6: "row repeats row 2 of the delivery exactly (a duplicate)",
        8: "row repeats row 7 of the delivery exactly (a duplicate)",
    }
