"""Bad and repeated deliveries: quarantine, clear failures, idempotent re-runs."""

import zipfile
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from assets.jobs import DAILY_JOB, PUBLISH_JOB, REFERENCE_JOB
from resources.catalog import connect_catalog
from resources.sources import DEFAULT_SOURCES_FILE, embedded_data_dir
from tests.conftest import make_lakehouse

DAY = "2013-01-02"


def day_of_flights(day: str) -> pl.DataFrame:
    y, m, d = (int(x) for x in day.split("-"))
    with zipfile.ZipFile(embedded_data_dir() / "flights.csv.zip") as zf:
        df = pl.read_csv(zf.read("flights.csv"), infer_schema=False)
    return df.filter((pl.col("year") == str(y)) & (pl.col("month") == str(m)) & (pl.col("day") == str(d)))


def sources_with_daily_flights(tmp_path: Path, frame: pl.DataFrame, day: str) -> Path:
    """A sources.yml whose flights come as one file per day, from a folder the test controls."""
    deliveries = tmp_path / "deliveries"
    deliveries.mkdir(exist_ok=True)
    frame.write_csv(deliveries / f"flights_{day}.csv", null_value="NA")
    doc = yaml.safe_load(DEFAULT_SOURCES_FILE.read_text())
    doc["sources"]["flights"]["location"] = str(deliveries / "flights_{date}.csv")
    path = tmp_path / "sources.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def raw_partition(lh, day: str) -> pl.DataFrame:
    return pl.read_parquet(lh.settings.raw_dir / "flights" / f"delivery_date={day}" / "part.parquet")


def test_rerunning_a_partition_changes_nothing(lakehouse):
    lakehouse.build(DAY)
    first_raw = raw_partition(lakehouse, DAY).drop("_batch_id", "_ingested_at")
    with connect_catalog(lakehouse.settings) as con:
        first = con.execute("select * exclude (batch_id, ingested_at) from curated.fct_flights order by flight_id").to_arrow_table()
    assert lakehouse.run(DAILY_JOB, DAY).success
    assert lakehouse.run(PUBLISH_JOB).success
    with connect_catalog(lakehouse.settings) as con:
        second = con.execute("select * exclude (batch_id, ingested_at) from curated.fct_flights order by flight_id").to_arrow_table()
    assert first.num_rows == day_of_flights(DAY).height == 943
    assert second.equals(first)
    assert raw_partition(lakehouse, DAY).drop("_batch_id", "_ingested_at").equals(first_raw)
    assert len(list((lakehouse.settings.raw_dir / "flights").glob("*/*.parquet"))) == 1


def test_corrupted_delivery_is_quarantined_and_nothing_is_lost(tmp_path, monkeypatch):
    frame = day_of_flights(DAY).with_row_index("i")
    corrupted = frame.with_columns(
        pl.when(pl.col("i") == 3).then(pl.lit("soon")).otherwise(pl.col("dep_delay")).alias("dep_delay"),
        pl.when(pl.col("i") == 7).then(pl.lit(None)).otherwise(pl.col("carrier")).alias("carrier"),
        pl.when(pl.col("i") == 11).then(pl.lit("2013"))
        .when(pl.col("i") == 15).then(pl.lit("3")).otherwise(pl.col("day")).alias("day"),
    ).drop("i")
    monkeypatch.setenv("LAKEHOUSE_SOURCES", str(sources_with_daily_flights(tmp_path, corrupted, DAY)))
    lh = make_lakehouse(tmp_path / "lakehouse")
    assert lh.run(REFERENCE_JOB).success
    result = lh.run(DAILY_JOB, DAY)
    assert result.success

    quarantine = pl.read_parquet(lh.settings.quarantine_dir / "flights" / f"delivery_date={DAY}" / "part.parquet")
    raw = raw_partition(lh, DAY)
    assert raw.height + quarantine.height == corrupted.height == 943
    assert quarantine.height == 4
    reasons = " | ".join(quarantine["_reason"].to_list())
    assert "column 'dep_delay': soon is not a valid float" in reasons
    assert "column 'carrier': null is not allowed" in reasons
    assert "do not form a valid date" in reasons
    assert "dated 2013-01-03, outside delivery 2013-01-02" in reasons
    assert set(quarantine["_source_row"].to_list()) == {4, 8, 12, 16}  # 1-based rows of the file

    meta = next(
        e.materialization.metadata for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["raw", "flights"])
    )
    assert meta["delivered_rows"].value == 943
    assert meta["raw_rows"].value == 939 and meta["quarantined_rows"].value == 4
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_quarantined_rows"
                 and c.asset_key == dg.AssetKey(["raw", "flights"]))
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN


def test_missing_column_fails_with_file_and_column(tmp_path, monkeypatch):
    frame = day_of_flights(DAY).drop("carrier")
    sources = sources_with_daily_flights(tmp_path, frame, DAY)
    monkeypatch.setenv("LAKEHOUSE_SOURCES", str(sources))
    lh = make_lakehouse(tmp_path / "lakehouse")
    result = lh.run(DAILY_JOB, DAY, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error.cause or failure.step_failure_data.error)
    assert "missing required column(s) 'carrier'" in message
    assert f"flights_{DAY}.csv" in message
    assert not (lh.settings.raw_dir / "flights" / f"delivery_date={DAY}").exists()


def test_unreadable_delivery_fails_naming_the_file(tmp_path, monkeypatch):
    sources = sources_with_daily_flights(tmp_path, day_of_flights(DAY), DAY)
    (tmp_path / "deliveries" / f"flights_{DAY}.csv").write_bytes(b"year,month\n2013,1,1,1\n\x00\xff\"")
    monkeypatch.setenv("LAKEHOUSE_SOURCES", str(sources))
    lh = make_lakehouse(tmp_path / "lakehouse")
    result = lh.run(DAILY_JOB, DAY, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"flights_{DAY}.csv" in str(failure.step_failure_data.error.cause or failure.step_failure_data.error)
