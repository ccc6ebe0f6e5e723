"""Every DuckDB connection loads DuckDB's own, signed extensions from the packaged folder, and
nothing else: a modified extension file is refused, and none is downloaded."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from resources.core.duckdb_connect import EXTENSIONS_ENV, connect, extension_directory

pytestmark = pytest.mark.fast

PACKAGED = ("ducklake", "httpfs", "postgres_scanner", "sqlite_scanner")


def test_the_packaged_extensions_load_offline():
    with connect() as con:
        for name in PACKAGED:
            con.execute(f"load {name}")
        loaded = {n for n, in con.execute("select extension_name from duckdb_extensions() where loaded").fetchall()}
        assert set(PACKAGED) <= loaded
        assert con.execute("select current_setting('allow_unsigned_extensions')").fetchone()[0] is False
        assert con.execute("select current_setting('autoinstall_known_extensions')").fetchone()[0] is False


def test_a_tampered_extension_is_refused_and_none_is_downloaded(tmp_path, monkeypatch):
    copy = tmp_path / "extensions"
    shutil.copytree(extension_directory(), copy)
    (binary,) = copy.rglob("ducklake.duckdb_extension")
    data = bytearray(binary.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the code
    binary.write_bytes(bytes(data))
    monkeypatch.setenv(EXTENSIONS_ENV, str(copy))
    with connect() as con:
        with pytest.raises(duckdb.Error, match="(?i)signature"):
            con.execute("load ducklake")
        con.execute("load httpfs")  # the untouched ones still load
        # Not packaged: refused, never fetched from the network.
        with pytest.raises(duckdb.Error):
            con.execute("load spatial")
        with pytest.raises(duckdb.Error):
            con.execute("select * from st_point(0, 0)")


def test_relative_files_resolve_against_the_search_path(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "x.csv").write_text('a,b\n1,"it\'s $(echo hi)"\n')
    with connect(search_path=tmp_path) as con:
        assert con.execute("select b from read_csv('raw/x.csv')").fetchone()[0] == "it's $(echo hi)"
