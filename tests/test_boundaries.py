"""Closed boundaries for analysts: self-contained catalog versions that held sessions keep reading,
no leftovers from interrupted publishes, no file access beyond the catalog and the sandbox, and a
copied lakehouse that needs nothing from its old place."""


import duckdb
import pytest

from assets.jobs import PUBLISH_JOB
from resources.catalog import KEEP_VERSIONS, connect_catalog, connect_sandbox

COUNT = "select count(*) from curated.fct_flights"


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    from tests.conftest import make_lakehouse

    lh = make_lakehouse(tmp_path_factory.mktemp("bounded") / "lakehouse")
    lh.build("2013-01-02")
    return lh


def test_a_held_session_outlives_every_retention_and_leftovers_are_cleaned(day):
    published = day.settings.published_dir
    held = duckdb.connect(str(day.settings.catalog_path), read_only=True)  # as the README shows
    first = held.execute("select version from catalog.version").fetchone()[0]
    # An interrupted publish left a temporary and an old-layout folder with a truncated parquet.
    (published / ".v0.deadbeef.tmp").write_bytes(b"partial")
    (published / "v19990101T000000000000Z" / "curated").mkdir(parents=True)
    (published / "v19990101T000000000000Z" / "curated" / "fct_flights.parquet").write_bytes(b"PAR1trunc")
    for _ in range(KEEP_VERSIONS + 2):
        assert day.run(PUBLISH_JOB).success
    assert held.execute(COUNT).fetchone()[0] == 943  # still reading its version, 7 publishes later
    assert held.execute("select version from catalog.version").fetchone()[0] == first
    held.close()
    kept = sorted(p.name for p in published.iterdir())
    assert len(kept) == KEEP_VERSIONS and all(n.startswith("v") and n.endswith(".duckdb") for n in kept)
    assert not (published / first).with_suffix(".duckdb").exists()  # removed, yet it was readable


def test_analyst_connections_cannot_read_the_raw_zone_or_a_key(day):
    raw = day.settings.raw_dir / "flights" / "*" / "part.parquet"
    key = day.settings.secrets_dir / "pseudonym.key"
    assert key.exists()
    with connect_catalog(day.settings) as con:
        assert con.execute(COUNT).fetchone()[0] == 943
        for sql in (f"select * from read_parquet('{raw}')", f"select * from read_csv('{key}')",
                    f"select * from read_text('{day.settings.root}/raw/_volume_overrides.jsonl')"):
            with pytest.raises(duckdb.Error, match="(?i)disabled|permission|not allowed"):
                con.execute(sql)
    con = connect_sandbox(day.settings, user="bounded")
    try:
        con.execute("create table mine as select carrier, count(*) n from analytics.curated.fct_flights group by 1")
        assert con.execute("select sum(n) from mine").fetchone()[0] == 943
        with pytest.raises(duckdb.Error, match="(?i)disabled|permission|not allowed"):
            con.execute(f"select * from read_parquet('{raw}')")
        with pytest.raises(duckdb.Error, match="(?i)disabled|permission|not allowed"):
            con.execute(f"select * from read_csv('{key}')")
    finally:
        con.close()


def test_a_copied_catalog_and_warehouse_read_only_their_own_files(day, tmp_path):
    from resources.settings import Settings
    from tests.conftest import moved_copy
    from resources.warehouse import open_warehouse

    with moved_copy(day.settings.root, tmp_path / "moved" / "lakehouse") as dst:
        moved = Settings(root=dst, env="dev")
        with connect_catalog(moved) as con:
            assert con.execute(COUNT).fetchone()[0] == 943
        with open_warehouse(moved) as wh:  # staging views read raw/ relative to the new root
            assert wh.execute("select count(*) from staging.stg_nycflights__flights").fetchone()[0] == 943
