"""dbt on Spark: the same dbt project, run by dbt-spark's ``session`` method in this process.

``python -m resources.warehouse.spark_engine [dbt args]`` (or ``make dbt-spark [ARGS=...]``) starts a
Spark session, gives it what the DuckDB plugin gives DuckDB connections, and then runs dbt with
``LAKEHOUSE_ENGINE=spark`` (profiles.yml picks the ``<env>_spark`` target). dbt-spark's session
method calls ``SparkSession.builder.getOrCreate()``, so it runs on the session made here:

- ``pseudonymize`` is registered as a Python UDF with the key loaded from the secrets store, so the
  key never appears in SQL, in dbt's compiled files or in the metastore (Spark has no HMAC function).
  Spark refuses a permanent view that calls a session function, which is why the staging and
  intermediate layers are tables on Spark (dbt_project.yml).
- The raw zone's parquet directories become external tables ``nycflights.<source>`` (partition
  columns discovered from the ``delivery_date=...`` directories), re-created on every run, so new
  deliveries are seen and a moved lakehouse reads its own files.
- The session clock is UTC: Spark's TIMESTAMP is an instant shown in the session zone, and the
  UTC columns must hold the same instants as DuckDB's TIMESTAMPTZ (macros/dialect.sql).

Where the tables go: ``LAKEHOUSE_SPARK_DIR`` (default ``<root>/spark``) holds the Spark warehouse
(parquet, one directory per table) and its Derby metastore. ``LAKEHOUSE_SPARK_MASTER`` (default
``local[2]``, this machine's 2 cores) may name a cluster (``spark://host:7077``, ``yarn``); a cluster
also needs the warehouse on storage every node reads and a shared Hive metastore
(docs/scaling-out.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from resources.core.config import LakehouseEnvironment
from resources.core.settings import Settings

ENGINE_ENV = "LAKEHOUSE_ENGINE"
# What runs on Spark: the whole project except the snapshots and the two dimensions read from them.
# dbt-spark's snapshots need Delta or Hudi tables, whose jars Spark fetches from Maven, which this
# machine does not reach. Tests whose parents are not all built are left out (cautious); the rest,
# dbt's unit tests of the clock and DST rules included, run as on DuckDB.
SPARK_BUILD = ["build", "--exclude", "planes_snapshot+", "airports_snapshot+", "--indirect-selection", "cautious"]
SOURCE_SCHEMA = "nycflights"  # the dbt source's name, which dbt-spark renders as its schema


def spark_dir(settings: Settings, environ: dict[str, str] | None = None) -> Path:
    return Path(LakehouseEnvironment.from_environ(environ).spark_dir or settings.local_root / "spark").resolve()


def session_config(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The Spark settings of the engine (plain data, unit-tested)."""
    config = LakehouseEnvironment.from_environ(environ)
    home = spark_dir(settings, environ)
    return {
        "spark.master": config.spark_master,
        "spark.app.name": f"lakehouse-dbt-{settings.env}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={home}",
        # A month of flights is ~27k rows: Spark's default of 200 shuffle partitions made every
        # join and window pay for 200 tasks (and write 200 files per table).
        "spark.sql.shuffle.partitions": str(config.spark_shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


def pseudonymize_series(values, key: bytes):
    """resources/core/pseudonym.py's keyed hash over a pandas Series, so Spark calls it once per
    batch of rows instead of once per row; nulls stay null (Arrow hands them over as None or NaN)."""
    import pandas as pd

    from resources.core.pseudonym import pseudonymize

    return pd.Series(
        [pseudonymize(v, key) if isinstance(v, str) else None for v in values], index=values.index, dtype=object
    )


LOCATION_MARKER = ".location"


class MovedSparkDir(RuntimeError):
    """The Spark folder was copied or moved since its tables were written."""


def claim_spark_dir(home: Path) -> None:
    """Spark's metastore records every table's absolute location, so a copied or moved lakehouse
    would read (or overwrite) the tables at the old place. The folder remembers where it was made
    and refuses to run elsewhere; its tables are derived from the raw zone, so removing it loses
    nothing (`make dbt-spark` rebuilds them)."""
    home.mkdir(parents=True, exist_ok=True)
    marker = home / LOCATION_MARKER
    if marker.exists() and marker.read_text().strip() != str(home):
        raise MovedSparkDir(
            f"{home} was made at {marker.read_text().strip()} and its Spark metastore points there. "
            f"Remove {home} (its tables are rebuilt from the raw zone) and run `make dbt-spark` again."
        )
    if not marker.exists():
        marker.write_text(f"{home}\n")


def start_session(settings: Settings, key: bytes, environ: dict[str, str] | None = None):
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import pandas_udf

    home = spark_dir(settings, environ)
    claim_spark_dir(home)
    # Python workers (the pseudonymize UDF) run this interpreter, which has the venv's pandas and
    # pyarrow; Spark would start `python3` from PATH.
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    builder = SparkSession.builder.enableHiveSupport()
    for name, value in session_config(settings, environ).items():
        builder = builder.config(name, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")

    @pandas_udf("string")
    def pseudonymize(values):
        return pseudonymize_series(values, key)

    spark.udf.register("pseudonymize", pseudonymize)
    register_raw_sources(spark, settings.raw_dir)
    return spark


def register_raw_sources(spark, raw_dir: Path) -> list[str]:
    """``nycflights.<name>`` over each directory of the raw zone (the dbt source's tables)."""
    if "://" in str(raw_dir):  # Spark reads a store through Hadoop's s3a connector (hadoop-aws jars)
        raise NotImplementedError(
            f"the Spark engine reads a local raw zone; {raw_dir} needs Spark's s3a "
            "connector, which this project does not install (docs/scaling-out.md)"
        )
    if not Path(raw_dir).is_dir():
        raise FileNotFoundError(f"no raw zone at {raw_dir}: ingest first (`make run`), or set LAKEHOUSE_ROOT")
    spark.sql(f"create database if not exists {SOURCE_SCHEMA}")
    names = []
    for path in sorted(p for p in Path(raw_dir).iterdir() if p.is_dir() and p.name.isidentifier()):
        location = str(path.resolve()).replace("'", "''")
        spark.sql(f"drop table if exists {SOURCE_SCHEMA}.{path.name}")  # external: the files stay
        # mergeSchema: a column added by a later delivery is read as null in the earlier ones,
        # like DuckDB's union_by_name in the DuckDB source definitions.
        spark.sql(
            f"create table {SOURCE_SCHEMA}.{path.name} using parquet options (path '{location}', mergeSchema 'true')"
        )
        if any(p.is_dir() and "=" in p.name for p in path.iterdir()):
            spark.sql(f"alter table {SOURCE_SCHEMA}.{path.name} recover partitions")
        names.append(path.name)
    return names


def run_dbt(args: list[str], settings: Settings | None = None) -> int:
    """dbt ``args`` on Spark; returns dbt's exit code (0 ok, 1 failures, 2 error)."""
    from dbt.cli.main import dbtRunner

    from resources.core.pseudonym import load_key
    from resources.core.settings import DBT_PROJECT_DIR

    settings = settings or Settings.from_env()
    os.environ.update(settings.dbt_env())
    os.environ[ENGINE_ENV] = "spark"
    start_session(settings, load_key(settings))
    # dbt's files go beside the Spark tables: the repository's dbt_project/target holds the DuckDB
    # manifest that the Dagster definitions load, and a Spark parse there would replace it.
    home = spark_dir(settings)
    paths = [] if "--target-path" in args else ["--target-path", str(home / "dbt-target")]
    paths += [] if "--log-path" in args else ["--log-path", str(home / "dbt-logs")]
    result = dbtRunner().invoke(
        [*args, *paths, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    )
    if result.exception is not None:
        print(f"dbt on Spark failed: {result.exception}", file=sys.stderr)
        return 2
    return 0 if result.success else 1


def main(argv: list[str]) -> int:
    """Arguments from the command line, else from LAKEHOUSE_DBT_ARGS (`make dbt-spark ARGS=...`,
    split like a shell would but never run by one), else SPARK_BUILD."""
    import shlex

    return run_dbt(argv or shlex.split(LakehouseEnvironment.from_environ().dbt_args) or SPARK_BUILD)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
