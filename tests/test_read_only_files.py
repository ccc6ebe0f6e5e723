"""The filesystem analyst connections read the lake's data files through: reads pass, nothing else."""

import duckdb
import pytest
from fsspec.implementations.local import LocalFileSystem

from resources.catalog.read_only_files import PREFIX, ReadOnlyFiles
from resources.core.duckdb_connect import connect

pytestmark = pytest.mark.fast


@pytest.fixture
def lake(tmp_path):
    data = tmp_path / "warehouse"
    (data / "curated").mkdir(parents=True)
    with connect() as con:
        con.execute(f"copy (select range as i from range(10)) to '{data / 'curated' / 'a.parquet'}'")
    (tmp_path / "secret.key").write_text("k")
    fs = ReadOnlyFiles(LocalFileSystem(), str(data))
    con = connect()
    con.register_filesystem(fs)
    con.execute("set allowed_directories = [?]", [PREFIX])
    con.execute("set enable_external_access = false")
    yield data, fs, con
    con.close()


def test_a_named_data_file_reads_as_itself(lake):
    data, fs, con = lake
    assert con.execute(f"select sum(i) from read_parquet('{PREFIX}curated/a.parquet')").fetchone()[0] == 45
    assert fs.info("published://lake/curated/a.parquet")["size"] == (data / "curated" / "a.parquet").stat().st_size


def test_writes_removals_listings_and_escapes_are_refused(lake):
    data, fs, con = lake
    before = (data / "curated" / "a.parquet").read_bytes()
    for sql in [
        f"copy (select 1) to '{PREFIX}curated/a.parquet'",
        f"copy (select 1) to '{PREFIX}new.parquet'",
        f"copy (select 1 as a, 2 as b) to '{PREFIX}curated' (format parquet, partition_by (a), overwrite)",
        f"select * from read_text('{PREFIX}../secret.key')",
        f"select * from read_text('{data.parent / 'secret.key'}')",
    ]:
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    for call in (
        lambda: fs.rm("published://lake/curated/a.parquet"),
        lambda: fs.mv("published://lake/curated/a.parquet", "published://lake/b.parquet"),
        lambda: fs.ls("published://lake/curated"),
        lambda: fs.open("published://lake/curated/a.parquet", "wb"),
        lambda: fs.open("published://lake/../secret.key", "rb"),
        lambda: fs.open("published://elsewhere/x", "rb"),
    ):
        with pytest.raises((PermissionError, FileNotFoundError)):
            call()
    assert (data / "curated" / "a.parquet").read_bytes() == before
    assert sorted(p.name for p in data.rglob("*")) == ["a.parquet", "curated"]
