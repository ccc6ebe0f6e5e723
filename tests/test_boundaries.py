"""Closed boundaries for analysts: catalog versions that held sessions keep reading, no leftovers
from interrupted publishes, no file access beyond the catalog and the sandbox, the lake's data
files readable and never writable, and a copied lakehouse that needs nothing from its old place."""

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pytest

from assets.jobs import PUBLISH_JOB
from resources.catalog.publish import KEEP_VERSIONS, connect_catalog, connect_sandbox, connect_version, publish_catalog

COUNT = "select count(*) from curated.fct_flights"


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    from tests.conftest import make_lakehouse

    lh = make_lakehouse(tmp_path_factory.mktemp("bounded") / "lakehouse")
    lh.build("2013-01-02")
    return lh


def test_a_held_session_outlives_every_retention_and_leftovers_are_cleaned(day):
    published = day.settings.published_dir
    held = connect_catalog(day.settings)
    sandbox = connect_sandbox(day.settings, user="held")  # the catalog attached as `analytics`
    first = held.execute("select version from catalog.version").fetchone()[0]
    # An interrupted publish left a temporary; a truncated copy of a version was put back by hand
    # under a newer name than any real one.
    (published / ".v0.deadbeef.tmp").write_bytes(b"partial")
    whole = (published / f"{first}.duckdb").read_bytes()
    (published / "v29990101T000000000000Z.duckdb").write_bytes(whole[: len(whole) // 2])
    (day.settings.root / f".{day.settings.catalog_path.name}.cafe.tmp").write_bytes(b"")
    for _ in range(KEEP_VERSIONS + 2):
        assert day.run(PUBLISH_JOB).success
    for con, prefix in ((held, ""), (sandbox, "analytics.")):  # still reading its version, 7 publishes later
        assert con.execute(f"select count(*) from {prefix}curated.fct_flights").fetchone()[0] == 943
        assert con.execute(f"select version from {prefix}catalog.version").fetchone()[0] == first
        con.close()
    kept = sorted(p.name for p in published.iterdir() if p.name != "_history.jsonl")  # the publish log stays
    assert len(kept) == KEEP_VERSIONS, kept  # only complete versions, the truncated one is gone
    assert all(n.startswith("v") and n.endswith(".duckdb") and not n.startswith("v2999") for n in kept), kept
    assert not (published / first).with_suffix(".duckdb").exists()  # removed, yet it was readable
    assert not list(day.settings.root.glob(".*.tmp"))
    with connect_catalog(day.settings) as con:  # the newest complete version is the one served
        assert con.execute("select version from catalog.version").fetchone()[0] == kept[-1].removesuffix(".duckdb")


def test_concurrent_publishes_each_finish_whole(day):
    """`make run` in process and a UI-launched run may publish at once: neither removes the other's
    unfinished file."""
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: publish_catalog(day.settings), range(2)))
    for r in results:
        path = day.settings.published_dir / f"{r.version}.duckdb"
        with connect_version(day.settings, path) as con:
            assert con.execute(COUNT).fetchone()[0] == 943
    assert results[0].version != results[1].version


DENIED = "(?i)disabled|permission|not allowed|read-only"


def test_analyst_connections_cannot_read_the_raw_zone_or_a_key(day):
    raw = day.settings.raw_dir / "flights" / "*" / "part.parquet"
    key = day.settings.secrets_dir / "pseudonym.key"
    data_file = next((day.settings.warehouse_data / "curated" / "fct_flights").rglob("*.parquet"))
    before = hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert key.exists()
    attacks = [
        f"select * from read_parquet('{raw}')",
        "select * from read_parquet('raw/flights/*/part.parquet')",
        f"select * from read_csv('{key}')",
        f"select * from read_blob('{key}')",
        f"select * from read_text('{day.settings.root}/raw/_volume_overrides.jsonl')",
        f"attach 'ducklake:sqlite:{day.settings.warehouse_catalog}' as wh (read_only)",
        f"attach '{day.settings.warehouse_catalog}' as wh (type sqlite)",
        f"copy (select 1) to '{day.settings.raw_dir}/planted.parquet'",
        # The lake's data files: readable through the catalog, never writable, not even in place.
        f"copy (select 1) to '{data_file}'",
        f"copy (select 1) to 'published://lake/{data_file.relative_to(day.settings.warehouse_data)}'",
        "copy (select 1) to 'published://lake/planted.parquet'",
        "copy (select 1 as a, 2 as b) to 'published://lake/curated' (format parquet, partition_by (a), overwrite)",
        "select * from read_text('published://lake/../warehouse.sqlite')",
    ]
    reopen = [
        "set enable_external_access = true",
        "set allowed_directories = ['/']",
        "reset allowed_paths",
        # DuckDB checks neither against the allowed directories: each overwrote a lake data file.
        f"set profiling_output = '{data_file}'",
        f"pragma profile_output = '{data_file}'",
        f"set temp_directory = '{day.settings.warehouse_data}'",
    ]
    with connect_catalog(day.settings) as con:
        assert con.execute(COUNT).fetchone()[0] == 943
        # A version is one snapshot: what the publish dropped (seeds, bookkeeping, the staging
        # views' SQL) is not reachable by time travel or in its metadata.
        assert con.execute("select count(*) from analytics.snapshots()").fetchone()[0] == 1
        assert con.execute("select count(*) from __ducklake_metadata_analytics.ducklake_view").fetchone()[0] == 0
        meta = "__ducklake_metadata_analytics"
        schemas = {r[0] for r in con.execute(f"select schema_name from {meta}.ducklake_schema").fetchall()}
        assert not schemas & {"staging", "intermediate", "reference"}, schemas
        private = con.execute(
            f"select count(*) from {meta}.ducklake_table t join {meta}.ducklake_schema s using (schema_id) "
            "where starts_with(t.table_name, '_') or s.schema_name = 'main'"
        ).fetchone()[0]
        orphans = con.execute(
            f"select count(*) from {meta}.ducklake_data_file where table_id not in "
            f"(select table_id from {meta}.ducklake_table)"
        ).fetchone()[0]
        assert (private, orphans) == (0, 0)
        for sql in attacks:
            with pytest.raises(duckdb.Error, match=DENIED):
                con.execute(sql)
        for sql in reopen:
            with pytest.raises(duckdb.Error, match="(?i)cannot"):
                con.execute(sql)
    connect_sandbox(day.settings, user="neighbour").close()
    con = connect_sandbox(day.settings, user="bounded")
    try:
        con.execute("create table mine as select carrier, count(*) n from analytics.curated.fct_flights group by 1")
        assert con.execute("select sum(n) from mine").fetchone()[0] == 943
        export = day.settings.sandbox_dir / "bounded" / "mine.parquet"
        con.execute(f"copy mine to '{export}'")  # the analyst's own folder is theirs
        assert con.execute(f"select sum(n) from read_parquet('{export}')").fetchone()[0] == 943
        for sql in [
            *attacks,
            f"attach '{day.settings.sandbox_dir}/neighbour.duckdb' as theirs",
            f"copy mine to '{day.settings.sandbox_dir}/mine.csv'",
        ]:
            with pytest.raises(duckdb.Error, match=DENIED):
                con.execute(sql)
        for sql in reopen:
            with pytest.raises(duckdb.Error, match="(?i)cannot"):
                con.execute(sql)
    finally:
        con.close()
    assert not (day.settings.raw_dir / "planted.parquet").exists()
    assert not (day.settings.warehouse_data / "planted.parquet").exists()
    assert hashlib.sha256(data_file.read_bytes()).hexdigest() == before
    with connect_catalog(day.settings) as con:
        assert con.execute(COUNT).fetchone()[0] == 943
    for user in ("../raw", "a/b", ".hidden", "x'; --"):
        with pytest.raises(ValueError, match="sandbox user"):
            connect_sandbox(day.settings, user=user)


def test_the_sandbox_cannot_reopen_the_shared_catalog_writable(day):
    catalog = day.settings.catalog_path
    published = sorted(day.settings.published_dir.glob("v*.duckdb"))
    before = hashlib.sha256(catalog.read_bytes()).hexdigest()
    con = connect_sandbox(day.settings, user="mallory")
    try:
        assert con.execute("select count(*) from analytics.curated.fct_flights").fetchone()[0] == 943
        con.execute("detach analytics")
        targets = [catalog, *published, day.settings.published_dir / ".." / catalog.name]
        for path in targets:
            for mode in ("", " (read_only)"):
                for prefix in ("", "ducklake:"):
                    with pytest.raises(duckdb.Error, match=DENIED):
                        con.execute(f"attach '{prefix}{path}' as a2{mode}")
        for sql in (
            "copy from database memory to a2",
            f"export database '{day.settings.root}/exported'",
            f"copy (select 1) to '{catalog}'",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        assert [p.name for p in (day.settings.sandbox_dir / "mallory").iterdir()] in ([], [".tmp"])  # no link left
    finally:
        con.close()
    assert hashlib.sha256(catalog.read_bytes()).hexdigest() == before
    assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in published)
    assert all(p.stat().st_mode & 0o222 == 0 for p in published)  # versions are read-only files


def test_a_copied_catalog_and_warehouse_read_only_their_own_files(day, tmp_path):
    from resources.core.settings import Settings
    from resources.warehouse.lock import open_warehouse
    from tests.conftest import moved_copy

    with moved_copy(day.settings.root, tmp_path / "moved" / "lakehouse") as dst:
        moved = Settings(root=dst, env="dev")
        with connect_catalog(moved) as con:
            assert con.execute(COUNT).fetchone()[0] == 943
        with open_warehouse(moved) as wh:  # staging views read raw/ relative to the new root
            assert wh.execute("select count(*) from staging.stg_nycflights__flights").fetchone()[0] == 943


def test_maintenance_keeps_every_file_a_kept_version_reads(day):
    """Every publish replaces the catalog's own tables, so the files of an older kept version are
    obsolete for the warehouse; its maintenance, even with no retention at all, keeps them."""
    from datetime import timedelta

    from resources.catalog.versions import connect_catalog_as_of, kept_versions
    from resources.warehouse.maintenance import maintain

    assert day.run(PUBLISH_JOB).success
    oldest = kept_versions(day.settings)[0]
    done = maintain(day.settings, keep=timedelta(0))
    assert done.snapshots_expired > 0  # it did expire what no kept version reads
    with connect_catalog_as_of(day.settings, version=oldest) as con:
        assert con.execute("select version from catalog.version").fetchone()[0] == oldest
        assert con.execute("select sum(row_count) from catalog.tables").fetchone()[0] > 0
        assert con.execute(COUNT).fetchone()[0] == 943
