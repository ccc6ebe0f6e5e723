"""Every zone on object storage: ``LAKEHOUSE_ROOT=s3://bucket/prefix`` on a local S3 server (moto's
server mode on 127.0.0.1, started and stopped by the fixture) runs the Jan-Feb ML lifecycle of the
``ml_lakehouse`` fixture (ingest, dbt, features, training, promotion, scoring) plus monitoring
and publication, and equals the local-folder run in row counts and value checksums. Only the
local state folder (DuckDB files, locks, the analyst's catalog copy) is on this machine."""

from __future__ import annotations

import json
import os

import dagster as dg
import polars as pl
import pytest

from assets.definitions import build_definitions
from assets.jobs import (
    DAILY_JOB,
    MONITOR_JOB,
    PROMOTE_JOB,
    PUBLISH_JOB,
    REFERENCE_JOB,
    SCORE_JOB,
    TRAIN_JOB,
    of_horizon,
)
from resources.catalog.publish import CURRENT, connect_catalog, current_pointer
from resources.catalog.versions import connect_catalog_as_of, kept_versions
from resources.core.lakehouse_resource import LakehouseResource
from resources.core.secrets_store import secrets_dir
from resources.core.settings import Settings
from resources.ml.features.availability import NOWCAST
from resources.ml.registry.storage import Registry
from tests.conftest import APPROVAL, SPLIT, Lakehouse, local_s3_server, promote_config

BUCKET, PREFIX = "lakehouse-test", "team"
URL = f"s3://{BUCKET}/{PREFIX}"
# Lineage columns differ between two ingestions of the same files (when, which run).
PER_RUN = {
    "ingested_at",
    "_ingested_at",
    "batch_id",
    "_batch_id",
    "source_file",
    "_source_file",
    "scored_at",
    "model_version",
}


@pytest.fixture(scope="module")
def s3_lakehouse(ml_lakehouse, tmp_path_factory):
    """The ml_lakehouse runs with the root on S3; the same pseudonym key, so hashed ids compare."""
    key = (secrets_dir(ml_lakehouse.settings) / "pseudonym.key").read_text().strip()
    state = tmp_path_factory.mktemp("s3-state") / "state"
    with local_s3_server() as aws, pytest.MonkeyPatch.context() as mp:
        for name, value in {**aws, "LAKEHOUSE_STATE_DIR": str(state), "LAKEHOUSE_PSEUDONYM_KEY": key}.items():
            mp.setenv(name, value)
        import s3fs

        s3fs.S3FileSystem(skip_instance_cache=True).mkdir(BUCKET)
        settings = Settings.at(URL, "dev").ensure()
        lh = Lakehouse(
            settings, build_definitions(LakehouseResource(root=URL, env="dev")), dg.DagsterInstance.ephemeral()
        )
        assert lh.run(REFERENCE_JOB).success
        assert lh.run(DAILY_JOB, "2013-01-01", "2013-02-28").success
        assert lh.run(TRAIN_JOB, run_config={"ops": {"ml__model_candidate": {"config": SPLIT}}}).success
        assert lh.run(PROMOTE_JOB, run_config=promote_config(**APPROVAL)).success
        assert lh.run(SCORE_JOB, "2013-01-01", "2013-02-28").success
        assert lh.run(
            of_horizon(TRAIN_JOB, NOWCAST), run_config={"ops": {"ml__model_candidate_nowcast_2h": {"config": SPLIT}}}
        ).success
        assert lh.run(PROMOTE_JOB, run_config=promote_config(**APPROVAL, horizon=NOWCAST)).success
        assert lh.run(of_horizon(SCORE_JOB, NOWCAST), "2013-01-01", "2013-02-28").success
        assert lh.run(
            MONITOR_JOB,
            "2013-01-01",
            "2013-02-01",
            run_config={"ops": {"monitoring__quality_report": {"config": {"as_of": ""}}}},
        ).success
        assert lh.run(PUBLISH_JOB).success
        yield lh, state


def _table(con, name: str, order: str) -> pl.DataFrame:
    df = pl.from_arrow(con.sql(f"select * from {name} order by {order}").to_arrow_table())
    return df.drop([c for c in df.columns if c in PER_RUN])


def test_every_zone_is_on_the_store_and_only_local_state_is_on_this_machine(s3_lakehouse):
    lh, state = s3_lakehouse
    root = lh.settings.root
    for key in [
        "raw/flights/delivery_date=2013-01-01/part.parquet",
        "raw/planes/part.parquet",
        "ml/registry/audit.jsonl",
        "ml/feature_definitions.parquet",
        "reports/index.html",
        "reports/drift/drift_2013-02.html",
        f"published/{CURRENT}",
        "published/_history.jsonl",
        ".lakehouse_env",
    ]:
        assert (root / key).exists(), key
    version = Registry(lh.settings).production_version()
    assert (root / "ml" / "models" / version / "model.joblib").exists()
    # Nothing the zones hold was written locally: no parquet, no model, no report here.
    local = [p.relative_to(state).as_posix() for p in state.rglob("*") if p.is_file()]
    assert not [p for p in local if p.endswith((".parquet", ".joblib", ".jsonl", ".html"))], local
    # The warehouse DuckLake: its SQLite catalog is a local file, its data files are in the store.
    assert "warehouse.sqlite" in local and "analytics.duckdb" in local
    assert list(lh.settings.warehouse_data.rglob("*.parquet"))
    for schema, table in [("ml", "flight_features"), ("ml", "flight_delay_scores"), ("monitoring", "daily_drift")]:
        assert list((lh.settings.warehouse_data / schema / table).rglob("*.parquet")), table  # ML and monitoring too
    # The runs' s3:// raw URL reached dbt's process only: a later local run in this process reads local raw.
    assert "LAKEHOUSE_RAW_URL" not in os.environ


def test_the_s3_run_equals_the_local_run_row_for_row(s3_lakehouse, ml_lakehouse):
    lh, _ = s3_lakehouse
    with connect_catalog(ml_lakehouse.settings) as a, connect_catalog(lh.settings) as b:
        counts_a = dict(((s, t), n) for s, t, n in a.execute("select * from catalog.tables").fetchall())
        counts_b = dict(((s, t), n) for s, t, n in b.execute("select * from catalog.tables").fetchall())
        for table in ["curated.fct_flights", "ml.flight_features", "ml.flight_delay_scores", "ml.model_registry"]:
            schema, name = table.split(".")
            assert counts_a[(schema, name)] == counts_b[(schema, name)] > 0, table
        for table, order in [
            ("curated.fct_flights", "flight_id"),
            ("ml.flight_features", "flight_id"),
            ("ml.flight_delay_scores", "flight_id"),
        ]:
            x, y = _table(a, table, order), _table(b, table, order)
            assert x.columns == y.columns
            differ = [c for c in x.columns if not x[c].equals(y[c])]
            assert x.hash_rows().sum() == y.hash_rows().sum(), (table, differ)  # the checksum of every value
        assert b.execute("select count(*) from monitoring.daily_metrics").fetchone()[0] == 59


def test_the_catalog_pointer_commits_a_version_and_refuses_one_that_does_not_match(s3_lakehouse, tmp_path):
    lh, state = s3_lakehouse
    settings = lh.settings
    pointer = current_pointer(settings)
    assert pointer["version"] in kept_versions(settings)
    # An upload a crash left without its pointer (an orphan) is never what analysts open.
    orphan = settings.published_dir / "v20990101T000000000000Z.duckdb"
    orphan.write_bytes(b"half a file")
    try:
        with connect_catalog(settings) as con:
            assert con.execute("select version from catalog.version").fetchone()[0] == pointer["version"]
    finally:
        orphan.unlink()
    # A second machine (an empty state folder) opens the same version, downloaded and checked.
    other = Settings(root=settings.root, env="dev", state=tmp_path / "other")
    other.state.mkdir()
    with connect_catalog(other) as con:
        assert con.execute("select version from catalog.version").fetchone()[0] == pointer["version"]
    with connect_catalog_as_of(other, pointer["version"]) as con:
        assert con.execute("select count(*) from curated.fct_flights").fetchone()[0] > 0
    # A pointer whose checksum names other bytes is refused, naming both files.
    forged = {**pointer, "sha256": "0" * 64}
    (settings.published_dir / CURRENT).write_text(json.dumps(forged))
    third = Settings(root=settings.root, env="dev", state=tmp_path / "third")
    third.state.mkdir()
    try:
        with pytest.raises(RuntimeError, match="does not match the sha256"):
            connect_catalog(third)
    finally:
        (settings.published_dir / CURRENT).write_text(json.dumps(pointer))


@pytest.mark.fast
@pytest.mark.parametrize("bad", ["s3://b/team/", "s3://b/t'eam", "s3://b/$(touch x)'", "s3://b/te am", "s3://"])
def test_a_root_url_that_is_not_a_plain_s3_url_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="LAKEHOUSE_ROOT"):
        Settings.from_env({"LAKEHOUSE_ROOT": bad})


@pytest.mark.fast
def test_an_s3_root_keeps_duckdb_files_and_keys_in_the_local_state_folder(tmp_path):
    s = Settings.from_env({"LAKEHOUSE_ROOT": URL, "LAKEHOUSE_STATE_DIR": str(tmp_path / "st")})
    assert s.remote and str(s.raw_dir) == f"{URL}/raw" and str(s.reports_dir) == f"{URL}/reports"
    assert s.warehouse_catalog == tmp_path / "st" / "warehouse.sqlite"
    assert str(s.warehouse_data) == f"{URL}/warehouse"
    assert s.warehouse_metadata == f"sqlite:{tmp_path / 'st' / 'warehouse.sqlite'}"
    assert s.catalog_path.parent == s.sandbox_dir.parent == tmp_path / "st"
    assert secrets_dir(s, {}) == tmp_path / "st.secrets"
    assert s.dbt_env()["LAKEHOUSE_RAW_URL"] == f"{URL}/raw"


def test_a_lakehouse_copied_to_another_prefix_reads_its_own_model(s3_lakehouse, tmp_path, monkeypatch):
    lh, state = s3_lakehouse
    fs = lh.settings.root.fs
    fs.copy(f"{BUCKET}/{PREFIX}/ml", f"{BUCKET}/copy/ml", recursive=True)
    fs.pipe(f"{BUCKET}/copy/.lakehouse_env", b"dev\n")
    version = Registry(lh.settings).production_version()
    original = f"{BUCKET}/{PREFIX}/ml/models/{version}/model.joblib"
    fs.mv(original, original + ".parked")  # any read of the old place would now fail loudly
    monkeypatch.setenv("LAKEHOUSE_SECRETS_DIR", str(secrets_dir(lh.settings)))  # the same keys
    try:
        copy = Settings.at(f"s3://{BUCKET}/copy", "dev", {"LAKEHOUSE_STATE_DIR": str(tmp_path / "st")}).ensure()
        registry = Registry(copy)
        assert registry.production_version() == version
        assert registry.load(version) is not None  # sha256 checked against the sealed record
        assert registry.record(version)["artifact_path"] == f"ml/models/{version}/model.joblib"
    finally:
        fs.mv(original + ".parked", original)


def test_make_runs_machinery_builds_three_days_on_an_s3_root_from_the_environment(tmp_path, monkeypatch):
    """`make run`'s backfill through the instance, with LAKEHOUSE_ROOT=s3://... read from the
    environment by the code location (not handed in by a test)."""
    from assets.bootstrap import backfill_all, in_process_workspace, split_at_gate, synchronous_instance
    from assets.ml.keys import FEATURES_KEY
    from resources.core.settings import REPO_ROOT
    from tests.conftest import three_day_home

    home = three_day_home(tmp_path, monkeypatch, REPO_ROOT / "dagster_home" / "dagster.yaml")
    with local_s3_server() as aws:
        for name, value in {
            **aws,
            "LAKEHOUSE_ROOT": "s3://boot/lake",
            "LAKEHOUSE_STATE_DIR": str(tmp_path / "st"),
        }.items():
            monkeypatch.setenv(name, value)
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir("boot")
        instance = synchronous_instance(str(home))
        with in_process_workspace(instance) as context:
            before, _ = split_at_gate(context.create_request_context().asset_graph)
            keys = [k for k in before if k.path[0] != "ml"] + [FEATURES_KEY]
            assert backfill_all(context, keys, "test", log=lambda *_: None)
        assert all(r.is_success for r in instance.get_runs())
        from resources.core.settings import Settings
        from resources.ml.lake import feature_days

        assert [str(d) for d in feature_days(Settings.from_env())] == ["2013-01-01", "2013-01-02", "2013-01-03"]
        assert fs.glob("boot/lake/warehouse/ml/flight_features/*.parquet")  # the lake's files are on the store
        assert len(fs.glob("boot/lake/raw/flights/*/part.parquet")) == 3
    assert not (tmp_path / "lakehouse").exists()  # nothing went to the local default of three_day_home


def test_on_the_store_a_redelivery_is_archived_a_short_one_refused_and_old_rejects_cleared(tmp_path, monkeypatch):
    """Ingestion on an s3:// root lists each zone's folder once instead of asking for each day's
    file: what exists must still be seen. A re-delivery keeps the batch it replaces, a short one
    is measured against the trailing days and the day it replaces, and a clean re-delivery clears
    the day's old rejects."""
    from datetime import date

    import s3fs

    from resources.raw.archive import LOG, archive_dir
    from resources.raw.sources import load_sources
    from resources.raw.volume import VolumeContractError
    from resources.raw.zone import ingest, quarantine_path, raw_path
    from tests.test_deliveries import day_of_flights, sources_with_daily_flights

    days = [date(2013, 1, d) for d in range(1, 6)]
    frames = {d: day_of_flights(str(d)) for d in days}
    for d in days:
        sources = sources_with_daily_flights(tmp_path, frames[d], str(d))
    last = days[-1]
    with local_s3_server() as aws:
        for name, value in {
            **aws,
            "LAKEHOUSE_STATE_DIR": str(tmp_path / "st"),
            "LAKEHOUSE_SOURCES": str(sources),
        }.items():
            monkeypatch.setenv(name, value)
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir("deliveries")
        settings = Settings.at("s3://deliveries/lake", "dev").ensure()
        spec = load_sources()["flights"]
        ingest(settings, spec, "run-1", days[0], last)  # Jan 1-4
        ingest(settings, spec, "run-2", last, last + (days[1] - days[0]))
        ingest(settings, spec, "run-3", last, last + (days[1] - days[0]))  # the same file: nothing archived
        assert not (archive_dir(settings) / LOG).exists()

        # 288 of 720 rows: under the trailing floor's 576 (80 % of the day it would replace).
        sources_with_daily_flights(tmp_path, frames[last].head(288), str(last))
        with pytest.raises(VolumeContractError, match="keeps at least 80% of the 720 rows it replaces"):
            ingest(settings, spec, "run-4", last, last + (days[1] - days[0]))

        # A correction with one bad row: the old batch is archived, the bad row quarantined.
        fixed = (
            frames[last]
            .with_row_index("i")
            .with_columns(
                pl.when(pl.col("i") == 5).then(pl.lit("soon")).otherwise(pl.col("arr_delay")).alias("arr_delay")
            )
            .drop("i")
        )
        sources_with_daily_flights(tmp_path, fixed, str(last))
        ingest(settings, spec, "run-5", last, last + (days[1] - days[0]))
        assert quarantine_path(settings, "flights", last).exists()
        # The clean file again: the correction and its reject are archived, the reject cleared.
        sources_with_daily_flights(tmp_path, frames[last], str(last))
        ingest(settings, spec, "run-6", last, last + (days[1] - days[0]))
        log = [json.loads(line) for line in (archive_dir(settings) / LOG).read_text().splitlines()]
        assert [(e["zone"], e["delivery_date"], e["rows"]) for e in log] == [
            ("raw", str(last), 720),
            ("raw", str(last), 719),
            ("quarantine", str(last), 1),
        ]
        assert all((settings.root / e["archived_path"]).exists() for e in log)
        assert not quarantine_path(settings, "flights", last).exists()
        assert pl.read_parquet(raw_path(settings, "flights", last).read_bytes()).height == 720
