"""Bad and repeated deliveries: quarantine, clear failures, idempotent re-runs."""

import hashlib
import json
import zipfile
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
import yaml

from assets.jobs import DAILY_JOB, PUBLISH_JOB, REFERENCE_JOB
from resources.catalog.publish import connect_catalog
from resources.raw.ingest import CUT_REASON
from resources.raw.sources import DEFAULT_SOURCES_FILE, embedded_data_dir, load_sources
from resources.raw.volume import read_override_audit
from resources.raw.zone import ingest
from resources.warehouse.lock import open_warehouse
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
        first = con.sql(
            "select * exclude (batch_id, ingested_at) from curated.fct_flights order by flight_id"
        ).to_arrow_table()
    assert lakehouse.run(DAILY_JOB, DAY).success
    assert lakehouse.run(PUBLISH_JOB).success
    with connect_catalog(lakehouse.settings) as con:
        second = con.sql(
            "select * exclude (batch_id, ingested_at) from curated.fct_flights order by flight_id"
        ).to_arrow_table()
    assert first.num_rows == day_of_flights(DAY).height == 943
    assert second.equals(first)
    # Lineage names the delivery as declared, not this machine's site-packages path.
    assert first_raw["_source_file"].unique().to_list() == ["{embedded}/flights.csv.zip"]
    assert set(second.column("source_file").to_pylist()) == {"{embedded}/flights.csv.zip"}
    assert raw_partition(lakehouse, DAY).drop("_batch_id", "_ingested_at").equals(first_raw)
    assert len(list((lakehouse.settings.raw_dir / "flights").glob("*/*.parquet"))) == 1


def test_corrupted_delivery_is_quarantined_and_nothing_is_lost(tmp_path, monkeypatch):
    frame = day_of_flights(DAY).with_row_index("i")
    corrupted = frame.with_columns(
        pl.when(pl.col("i") == 3).then(pl.lit("soon")).otherwise(pl.col("dep_delay")).alias("dep_delay"),
        pl.when(pl.col("i") == 7).then(pl.lit(None)).otherwise(pl.col("carrier")).alias("carrier"),
        pl.when(pl.col("i") == 11)
        .then(pl.lit("2013"))
        .when(pl.col("i") == 15)
        .then(pl.lit("3"))
        .otherwise(pl.col("day"))
        .alias("day"),
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
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["raw", "flights"])
    )
    assert meta["delivered_rows"].value == 943
    assert meta["raw_rows"].value == 939 and meta["quarantined_rows"].value == 4
    check = next(
        c
        for c in result.get_asset_check_evaluations()
        if c.check_name == "no_quarantined_rows" and c.asset_key == dg.AssetKey(["raw", "flights"])
    )
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
    (tmp_path / "deliveries" / f"flights_{DAY}.csv").write_bytes(b'year,month\n2013,1,1,1\n\x00\xff"')
    monkeypatch.setenv("LAKEHOUSE_SOURCES", str(sources))
    lh = make_lakehouse(tmp_path / "lakehouse")
    result = lh.run(DAILY_JOB, DAY, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"flights_{DAY}.csv" in str(failure.step_failure_data.error.cause or failure.step_failure_data.error)


def step_failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    return str(error.cause or error)


def override(day: str, approver: str, reason: str) -> dict:
    return {
        "ops": {
            "raw__flights": {
                "config": {"allow_volume_override": {"days": [day], "approver": approver, "reason": reason}}
            }
        }
    }


def curated_rows(lh, day: str) -> int:
    with open_warehouse(lh.settings, read_only=True) as con:
        return con.execute("select count(*) from curated.fct_flights where flight_date = ?", [day]).fetchall()[0][0]


def test_short_redeliveries_are_refused_until_an_audited_override(tmp_path, monkeypatch):
    days = ["2013-01-01", "2013-01-02", "2013-01-03", "2013-01-04", "2013-01-05"]
    for d in days:
        sources = sources_with_daily_flights(tmp_path, day_of_flights(d), d)
    monkeypatch.setenv("LAKEHOUSE_SOURCES", str(sources))
    lh = make_lakehouse(tmp_path / "lakehouse")
    lh.build(days[0], days[-1])
    day, full = days[-1], day_of_flights(days[-1])
    raw_file = lh.settings.raw_dir / "flights" / f"delivery_date={day}" / "part.parquet"
    assert pq.read_metadata(raw_file).num_rows == curated_rows(lh, day) == full.height == 720
    # Trailing median of Jan 1-4 (842, 943, 914, 915) = 914.5; max_drop 0.5 -> floor 458.
    header_only, smaller = full.clear(), full.head(288)  # 288 = 60% fewer than 720
    for frame, delivered in ((header_only, 0), (smaller, 288)):
        sources_with_daily_flights(tmp_path, frame, day)
        result = lh.run(DAILY_JOB, day, raise_on_error=False)
        assert not result.success
        message = step_failure_message(result)
        assert f"flights_{day}.csv" in message and f"partition {day}" in message
        # The trailing floor (458) and, for a re-delivery, 80 % of the 720 rows it replaces (576).
        assert f"holds {delivered} valid rows" in message and "expects 576 or more" in message
        assert "median of the 4 trailing raw partition(s) in 14 days, 914.5 rows" in message
        assert "keeps at least 80% of the 720 rows it replaces" in message
        assert "allow_volume_override" in message
        assert pq.read_metadata(raw_file).num_rows == curated_rows(lh, day) == 720  # nothing replaced

    # Blank approvals and days outside the run are refused, not silently ignored.
    assert not lh.run(DAILY_JOB, day, raise_on_error=False, run_config=override(day, " ", "x")).success
    bad_day = lh.run(DAILY_JOB, day, raise_on_error=False, run_config=override("2013-01-04", "a", "b"))
    assert "outside this run's partitions" in step_failure_message(bad_day)
    assert pq.read_metadata(raw_file).num_rows == 720 and read_override_audit(lh.settings) == []

    tricky = 'carrier strike; "quotes", $(rm -rf /) and `backticks`'
    result = lh.run(DAILY_JOB, day, run_config=override(day, "ops-lead", tricky))  # the 288 rows
    assert pq.read_metadata(raw_file).num_rows == curated_rows(lh, day) == 288
    meta = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["raw", "flights"])
    )
    assert meta["delivered_rows"].value == meta["raw_rows"].value + meta["quarantined_rows"].value == 288
    assert meta["volume_expected_min_rows"].value == 576 and meta["volume_trailing_median"].value == 914.5
    assert meta["volume_overrides"].value[0]["reason"] == tricky

    sources_with_daily_flights(tmp_path, header_only, day)
    assert lh.run(DAILY_JOB, day, run_config=override(day, "ops-lead", "no flights: airport closed")).success
    assert lh.run(PUBLISH_JOB).success
    assert pq.read_metadata(raw_file).num_rows == curated_rows(lh, day) == 0
    with connect_catalog(lh.settings) as con:
        per_day = dict(
            con.execute("select flight_date::varchar, count(*) from curated.fct_flights group by 1").fetchall()
        )
    assert per_day == {"2013-01-01": 842, "2013-01-02": 943, "2013-01-03": 914, "2013-01-04": 915}

    audit = read_override_audit(lh.settings)
    assert [(a["partition"], a["delivered_rows"], a["expected_min_rows"], a["approver"]) for a in audit] == [
        (day, 288, 576, "ops-lead"),
        (day, 0, 458, "ops-lead"),
    ]
    assert audit[0]["reason"] == tricky and audit[0]["file"].endswith(f"flights_{day}.csv")
    raw_line = (lh.settings.raw_dir / "_volume_overrides.jsonl").read_text().splitlines()[0]
    assert json.loads(raw_line)["reason"] == tricky


def cut_last_row(text: str, fields: int, keep_chars: int | None = None) -> str:
    """The file cut inside its last row: after ``fields`` fields, or ``keep_chars`` into the next."""
    head, last = text.rstrip("\n").rsplit("\n", 1)
    parts = last.split(",")
    kept = parts[:fields] + ([parts[fields][:keep_chars]] if keep_chars is not None else [])
    return head + "\n" + ",".join(kept)


def test_ragged_rows_are_quarantined_never_padded_or_cut(tmp_path, monkeypatch):
    frame = day_of_flights(DAY)
    sources = sources_with_daily_flights(tmp_path, frame, DAY)
    delivery = tmp_path / "deliveries" / f"flights_{DAY}.csv"
    lines = delivery.read_text().splitlines()
    lines[3] += ',"an extra, quoted field"'  # data row 3 gets a 20th field
    text = "\n".join(lines) + "\n"
    monkeypatch.setenv("LAKEHOUSE_SOURCES", str(sources))
    lh = make_lakehouse(tmp_path / "lakehouse")
    assert lh.run(REFERENCE_JOB).success
    variants = {  # the last row (943) cut short, as a broken transfer leaves it: no line end after it
        "cut after distance": (cut_last_row(text, 16), CUT_REASON + " (16 fields, header has 19)"),
        "cut inside distance": (cut_last_row(text, 15, 2), CUT_REASON + " (16 fields, header has 19)"),
        "cut inside the last field": (text.rstrip("\n")[:-3], CUT_REASON),
    }
    for label, (body, last_reason) in variants.items():
        delivery.write_text(body)
        if label == "cut after distance":  # one through Dagster (metadata), the others directly
            result = lh.run(DAILY_JOB, DAY)
            meta = next(
                e.materialization.metadata
                for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey(["raw", "flights"])
            )
            assert (meta["delivered_rows"].value, meta["raw_rows"].value, meta["quarantined_rows"].value) == (
                943,
                941,
                2,
            )
            assert meta["quarantine_reasons"].value == {
                "last row not ended by a line end": 1,
                "row has 20 fields, header has 19": 1,
            }
        else:
            summary = ingest(
                lh.settings, load_sources()["flights"], f"run-{len(label)}", date(2013, 1, 2), date(2013, 1, 3)
            )
            assert (summary.delivered, summary.raw_rows, summary.quarantined) == (943, 941, 2)
        raw = raw_partition(lh, DAY)
        quarantine = pl.read_parquet(lh.settings.quarantine_dir / "flights" / f"delivery_date={DAY}" / "part.parquet")
        reasons = dict(zip(quarantine["_source_row"].to_list(), quarantine["_reason"].to_list()))
        assert raw.height + quarantine.height == 943 and raw.height == 941, label
        assert reasons[3] == 'row has 20 fields, header has 19 (beyond the header: ["an extra, quoted field"])'
        assert quarantine.filter(pl.col("_source_row") == 3)["carrier"].item() == frame["carrier"][2]
        assert reasons[943] == last_reason, label
        assert not raw.filter(pl.col("_source_row").is_in([3, 943])).height  # neither padded nor cut into raw
        assert raw["hour"].null_count() == raw["minute"].null_count() == raw["time_hour"].null_count() == 0
        assert raw["_source_file"].unique().to_list() == [str(tmp_path / "deliveries" / f"flights_{DAY}.csv")]


def test_a_redelivery_keeps_the_replaced_batch_and_a_rerun_archives_nothing(tmp_path, monkeypatch):
    from resources.raw.archive import archive_dir

    frame = day_of_flights(DAY)
    monkeypatch.setenv("LAKEHOUSE_SOURCES", str(sources_with_daily_flights(tmp_path, frame, DAY)))
    lh = make_lakehouse(tmp_path / "lakehouse")
    assert lh.run(REFERENCE_JOB).success
    assert lh.run(DAILY_JOB, DAY).success
    assert lh.run(DAILY_JOB, DAY).success  # the same delivery again: not a re-delivery
    assert not (archive_dir(lh.settings) / "_archive.jsonl").exists()
    first = raw_partition(lh, DAY)

    # The carrier corrects one delay and sends the day again, with one bad row this time.
    fixed = (
        frame.with_row_index("i")
        .with_columns(
            pl.when(pl.col("i") == 0).then(pl.lit("99")).otherwise(pl.col("dep_delay")).alias("dep_delay"),
            pl.when(pl.col("i") == 5).then(pl.lit("soon")).otherwise(pl.col("arr_delay")).alias("arr_delay"),
        )
        .drop("i")
    )
    sources_with_daily_flights(tmp_path, fixed, DAY)
    assert lh.run(DAILY_JOB, DAY).success
    log = [json.loads(line) for line in (archive_dir(lh.settings) / "_archive.jsonl").read_text().splitlines()]
    assert [(e["zone"], e["source"], e["delivery_date"], e["rows"]) for e in log] == [("raw", "flights", DAY, 943)]
    kept = pl.read_parquet(lh.settings.root / log[0]["archived_path"])
    assert kept.equals(first) and log[0]["batch_id"] == first["_batch_id"][0]
    assert log[0]["replaced_by_batch"] == raw_partition(lh, DAY)["_batch_id"][0] != log[0]["batch_id"]
    assert hashlib.sha256((lh.settings.root / log[0]["archived_path"]).read_bytes()).hexdigest() == log[0]["sha256"]

    # The clean original again: the corrected day and its one-row quarantine are both kept.
    sources_with_daily_flights(tmp_path, frame, DAY)
    assert lh.run(DAILY_JOB, DAY).success
    assert lh.run(PUBLISH_JOB).success
    with connect_catalog(lh.settings) as con:
        rows = con.execute("select zone, rows from catalog.replaced_batches order by replaced_at, zone").fetchall()
    assert rows == [("raw", 943), ("quarantine", 1), ("raw", 942)]
