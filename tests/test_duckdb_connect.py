"""Every DuckDB connection loads DuckDB's own, signed extensions from the packaged folder, and
nothing else: a modified extension file is refused, and none is downloaded."""

from __future__ import annotations

import os
import shutil

import duckdb
import pytest

from resources.core.duckdb_connect import EXTENSIONS_ENV, NewerStorage, connect, extension_directory

pytestmark = pytest.mark.fast

PACKAGED = ("ducklake", "httpfs", "postgres_scanner", "sqlite_scanner")


def test_the_packaged_extensions_load_offline():
    with connect() as con:
        for name in PACKAGED:
            con.execute(f"load {name}")
        loaded = {n for (n,) in con.execute("select extension_name from duckdb_extensions() where loaded").fetchall()}
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


# The main header (first 4 kB) of a warehouse.duckdb written by the DuckDB 2.0 development build
# this project used before the 1.4 pin: storage version 999 (0x3e7), "v2.0.0"; the rest is zeros.
NEWER_HEADER = bytes.fromhex(
    "66e1e65cea1805154455434be703000000000000000000000000000000000000"
    "000000000000000000000000000000000000000076322e302e30000000000000"
    "0000000000000000000000000000000000000000643534636262653364660000"
    "000000000000000000000000000000000000000000000000000000007acfe59e"
    "5b0a7b3491541982a81075af"
)


def test_a_file_from_a_newer_duckdb_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(NEWER_HEADER.ljust(4096, b"\0"))
    with pytest.raises(NewerStorage, match="warehouse.duckdb was written by a newer DuckDB.*make run"):
        connect(path, read_only=True)


def _dbt_credentials(settings, monkeypatch, **extra):
    """The warehouse profile as dbt renders it in `settings`' environment."""
    from argparse import Namespace

    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    from resources.core.settings import DBT_PROJECT_DIR

    for key, value in {**settings.dbt_env(), **extra}.items():
        monkeypatch.setenv(key, value)
    set_invocation_context(dict(os.environ))
    set_from_args(Namespace(), {})
    raw = read_profile(str(DBT_PROJECT_DIR))
    return Profile.from_raw_profiles(raw, "lakehouse", ProfileRenderer({}), target_override="dev").credentials


def test_dbt_connections_keep_working_after_a_build_spilled_to_disk(tmp_path, monkeypatch):
    """dbt-duckdb re-applies the profile's `settings` to every new cursor (one per node). Once a
    query has spilled, DuckDB refuses any `SET temp_directory`, even to the same folder: the SF=100
    build failed at the node after the first spill. The bound and the spill folder are set once."""
    from dbt.adapters.duckdb.environments import create

    from resources.core.settings import Settings

    settings = Settings(root=tmp_path / "a lake $(x)", env="dev").ensure()  # spliced into SQL by the plugin
    env = create(_dbt_credentials(settings, monkeypatch, LAKEHOUSE_DUCKDB_MEMORY="200MB"))
    first = env.handle().cursor()
    bound, spill = first.execute("select current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert bound.endswith("MiB") and float(bound.split()[0]) < 200 and spill == str(settings.local_root / ".duckdb_tmp")
    # ~250 MB of sort input against a 200 MB bound: it spills.
    first.execute("select count(*) from (select md5(range::varchar) s, range from range(3000000) order by s)")
    assert first.fetchone()[0] == 3_000_000
    second = env.handle().cursor()  # the next node's connection
    assert second.execute("select current_setting('file_search_path')").fetchone() == (str(settings.local_root),)
    assert second.execute("select count(*) from duckdb_databases() where database_name = 'warehouse'").fetchone() == (
        1,
    )


def test_the_dbt_profile_is_the_same_for_every_lakehouse(tmp_path, monkeypatch):
    """dbt parses the whole project again whenever the profile it hashes changed (5-7 s a build):
    nothing in it may depend on where the lakehouse is."""
    from resources.core.settings import Settings

    one = _dbt_credentials(Settings(root=tmp_path / "one", env="dev").ensure(), monkeypatch)
    other = _dbt_credentials(Settings(root=tmp_path / "other" / "lakehouse", env="dev").ensure(), monkeypatch)
    assert list(one.connection_info()) == list(other.connection_info())


def test_a_catalog_made_again_or_copied_at_a_path_is_told_apart_from_the_one_before(tmp_path):
    """Held warehouse connections (resources/warehouse/lock.py) are reused while the catalog file
    at their path is the one they opened. A new file can get the old one's inode, so the file
    carries a random id; a copy over the path gets its own."""
    from resources.core.duckdb_connect import copy_sqlite_catalog, prepare_sqlite_catalog, sqlite_catalog_id

    path = tmp_path / "warehouse.sqlite"
    assert sqlite_catalog_id(path) is None and not path.exists()  # asking never creates one
    prepare_sqlite_catalog(f"sqlite:{path}")
    first = sqlite_catalog_id(path)
    prepare_sqlite_catalog(f"sqlite:{path}")
    assert first and sqlite_catalog_id(path) == first  # kept while it is the same file
    copy = tmp_path / "copy.sqlite"
    copy_sqlite_catalog(path, copy)
    assert sqlite_catalog_id(copy) not in (None, 0, first)
    path.unlink()
    prepare_sqlite_catalog(f"sqlite:{path}")
    assert sqlite_catalog_id(path) not in (None, 0, first)
