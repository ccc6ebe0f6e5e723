"""The delivery volume contract and ragged records, on the plain functions (real parquet, tmp roots)."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml

from resources.raw.ingest import read_delivery
from resources.raw.zone import ingest, raw_path
from resources.core.settings import Settings
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

pytestmark = pytest.mark.fast  # `make test-fast`: no Dagster run, no dbt build

COLUMNS = (ColumnContract("d", "date", nullable=False), ColumnContract("n", "int"))


def daily_spec(folder: Path, volume: VolumeContract | None) -> SourceSpec:
    return SourceSpec(name="s", description="", location=str(folder / "s_{date}.csv"), format="csv",
                      columns=COLUMNS, partitioning=DailyPartitioning(("d",), date(2013, 1, 1), date(2013, 2, 1)),
                      volume=volume)


def deliver(folder: Path, day: str, rows: int) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"s_{day}.csv").write_text("d,n\n" + "".join(f"{day},{i}\n" for i in range(rows)))


def write_sources(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load(DEFAULT_SOURCES_FILE.read_text())
    edit(doc["sources"])
    path = tmp_path / "sources.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("source, volume, message", [
    ("flights", {"min_rows": -1}, "source 'flights', field 'volume.min_rows'"),
    ("flights", {"max_drop": 1.5}, "source 'flights', field 'volume.max_drop'"),
    ("flights", {"max_drop": "half"}, "source 'flights', field 'volume.max_drop'"),
    ("weather", {"trailing_days": 0}, "source 'weather', field 'volume.trailing_days'"),
    ("weather", {"may_be_empty": "no"}, "source 'weather', field 'volume.may_be_empty'"),
    ("planes", {"trailing_days": 7}, "source 'planes', field 'volume.trailing_days': only daily sources"),
    ("airlines", {"min_row": 5}, "source 'airlines', field 'volume.min_row': unknown"),
    ("airports", [100], "source 'airports', field 'volume'"),
])
def test_a_malformed_volume_names_source_and_field(tmp_path, source, volume, message):
    def edit(sources):
        sources[source]["volume"] = volume
    with pytest.raises(SourceConfigError, match=message.replace("(", r"\(")):
        load_sources(write_sources(tmp_path, edit))


def test_declared_volumes_and_defaults():
    sources = load_sources()
    assert sources["flights"].volume == VolumeContract(400, 0.5, 14, False)
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
    assert str(refused.value).endswith("ops: {raw__s: {config: {allow_volume_override: "
                                       "{days: [2013-01-03], approver: ..., reason: ...}}}}")
    assert not (settings.raw_dir / "s").exists()

    override = VolumeOverride.parse(["2013-01-03"], "ana", "holiday schedule")
    summary = ingest(settings, spec, "run00002", date(2013, 1, 1), date(2013, 1, 5), override=override)
    assert [p.raw_rows for p in summary.partitions] == [10, 12, 4, 11]
    assert [c.overridden for c in summary.volume_checks] == [False, False, True, False]
    audit = read_override_audit(settings)
    assert [(a["partition"], a["raw_rows"], a["expected_min_rows"], a["file"]) for a in audit] == [
        ("2013-01-03", 4, 6, str(folder / "s_2013-01-03.csv"))]


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
    spec = SourceSpec(name="ref", description="", location=str(csv), format="csv",
                      columns=(ColumnContract("k", "string", nullable=False),),
                      volume=VolumeContract(min_rows=2, max_drop=0.5))
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
    spec = SourceSpec(name="t", description="", location="x", format="csv",
                      columns=(ColumnContract("a", "int"), ColumnContract("b", "string"), ColumnContract("c", "int")))
    path = tmp_path / "t.csv"
    # BOM, CRLF, a quoted newline, a short row, a blank line and a long row with a quote inside.
    path.write_bytes(b'\xef\xbb\xbfa,b,c\r\n1,"two\r\nlines",3\r\n4,5\r\n\r\n6,7,8,"say ""hi"""\r\n9,NA,10')
    df = read_delivery(spec, path)
    assert df["_source_row"].to_list() == [1, 2, 3, 4, 5]
    assert df["b"].to_list() == ["two\r\nlines", "5", None, "7", None]
    assert df["_record_error"].to_list() == [
        None, "row has 2 fields, header has 3", "row has 0 fields, header has 3",
        'row has 4 fields, header has 3 (beyond the header: ["say \\"hi\\""])', None]
    path.write_bytes(b"a,b,c\n1,2,\xff\n")
    with pytest.raises(Exception, match=r"t\.csv.*not UTF-8"):
        read_delivery(spec, path)
