"""Where ML data lives in the lakehouse, and reading the curated inputs it is built from.

ml.flight_features[_nowcast_2h] (warehouse DuckLake)  point-in-time features, per horizon
ml.flight_delay_scores (warehouse DuckLake)        the current scores, both horizons
ml/scores_archive/flight_date=.../<scored_at>.parquet   every replaced version of a day's scores
ml/models/<model_version>/model.joblib             artifacts (sha256 in the registry)
ml/registry/*.json, audit.jsonl                    training records and the audit trail (the evidence)
ml.model_registry, ml.model_audit (warehouse DuckLake)  their exports for analysts
ml.backtest_scores, ml.backtest_metrics (warehouse DuckLake)  the walk-forward backtest
"""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from resources.catalog.views import ExternalView
from resources.core.settings import Settings
from resources.ml.features.availability import DAY_AHEAD
from resources.ml.features.point_in_time import FLIGHT_LOOKBACK_DAYS, WEATHER_LOOKBACK_DAYS, FeatureInputs, labels
from resources.warehouse.conflicts import is_commit_conflict
from resources.warehouse.lock import warehouse_reader, warehouse_writer


def ml_dir(settings: Settings) -> Path:
    return settings.root / "ml"


def feature_table(horizon: str = DAY_AHEAD) -> str:
    """The lake table of a horizon's features: ``ml.flight_features`` for the production
    (day-ahead) horizon, ``ml.flight_features_<horizon>`` for the others."""
    return _of_horizon("flight_features", horizon)


def read_features(
    settings: Settings,
    start: date | None = None,
    end: date | None = None,
    horizon: str = DAY_AHEAD,
    columns: list[str] | None = None,
    ids: list[str] | None = None,
) -> pl.DataFrame:
    """A horizon's features of the days in [start, end), by day then flight; only the flights
    ``ids`` if given."""
    return read_lake_days(settings, feature_table(horizon), start, end, columns=columns, ids=ids)


def feature_days(settings: Settings, horizon: str = DAY_AHEAD) -> list[date]:
    """The days whose features of ``horizon`` are built (an empty day included)."""
    return lake_days(settings, feature_table(horizon))


def _of_horizon(name: str, horizon: str) -> str:
    return name if horizon == DAY_AHEAD else f"{name}_{horizon}"


def scores_archive_dir(settings: Settings, horizon: str = DAY_AHEAD) -> Path:
    return ml_dir(settings) / _of_horizon("scores_archive", horizon)


def read_warehouse(settings: Settings, *queries: tuple[str, list]) -> list[pl.DataFrame]:
    """Run read-only queries on the warehouse, all on one committed snapshot: one transaction,
    so a dbt build committing meanwhile is neither waited for nor half seen."""
    with warehouse_reader(settings) as con:
        # execute(), not sql(): a relation built with parameters ran 30x slower here (3.4 s vs 0.1 s
        # for a month of features), its filters not pushed into the scan.
        return [pl.from_arrow(con.execute(sql, params or None).fetch_arrow_table()) for sql, params in queries]


def feature_input_queries(start: date, end: date, flights_from: date | None = None) -> tuple[tuple[str, list], ...]:
    """The curated inputs of features for [start, end): flights and weather from the look-back
    their history and weather statistics need (features/point_in_time.py), planes, dates. The
    same tables exist in the warehouse and in the analyst catalog (the scoring service reads
    these queries from the catalog, so a served feature is computed from the very same rows).
    ``flights_from``: read flights from that day on instead (the days before are in hand)."""
    return (
        # History: delivered flights, and for days whose flights are not delivered yet the
        # published timetable (its rows carry no actuals: ``actuals_delivered`` false, never known).
        (
            "select *, true as actuals_delivered from ("
            " select * exclude (source_file, source_row, ingested_at) from curated.fct_flights"
            " where flight_date >= $1 and flight_date < $2) "
            "union all by name "
            "select * exclude (source_file, source_row, ingested_at), false as actuals_delivered "
            "from curated.fct_schedules s where flight_date >= $1 and flight_date < $2 "
            "and not exists (select 1 from curated.fct_flights f where f.flight_id = s.flight_id "
            " and f.flight_date >= $1 and f.flight_date < $2)",
            [flights_from or start - timedelta(days=FLIGHT_LOOKBACK_DAYS), end],
        ),
        (
            "select * from curated.fct_weather_hourly where delivery_date >= ? and delivery_date < ?",
            [start - timedelta(days=WEATHER_LOOKBACK_DAYS), end],
        ),
        ("select * from snapshots.planes_snapshot", []),
        ("select * from curated.dim_dates", []),
        # The flights to predict: each day's published timetable (features.target_rows).
        (
            "select * exclude (source_file, source_row, ingested_at) from curated.fct_schedules "
            "where flight_date >= ? and flight_date < ?",
            [start, end],
        ),
    )


def load_feature_inputs(
    settings: Settings, start: date, end: date, history: tuple[pl.DataFrame, date] | None = None
) -> FeatureInputs:
    """``history``: (flights, to) read by this query for a window that began at or before this
    one's look-back and ended at ``to`` (the previous pass's): only [to, end) is read again. The
    flights query is a union per flight id, and a flight id begins with its date, so a window's
    rows are the rows of its days, whichever window read them. Consecutive passes overlap by the
    look-back; reading each day once halves the flights read at 31-day passes (~24 s a pass at
    SF=100, the largest part of a features build there)."""
    lookback = start - timedelta(days=FLIGHT_LOOKBACK_DAYS)
    flights_from = history[1] if history is not None and history[1] > lookback else None
    queries = feature_input_queries(start, end, flights_from)
    flights, weather, planes, dates, schedules = read_warehouse(settings, *queries)
    if flights_from is not None:
        kept = history[0].filter(pl.col("flight_date") >= lookback)
        flights = pl.concat([kept, flights], how="vertical", rechunk=False)
    return FeatureInputs(flights=flights, weather=weather, planes=planes, dates=dates, schedules=schedules)


def labelled_days(settings: Settings) -> tuple[date, date]:
    """The first day with features and the last day with delivered flights (labels known)."""
    days = feature_days(settings)
    (last,) = read_warehouse(settings, ("select max(flight_date) as d from curated.fct_flights", []))
    if not days or last["d"][0] is None:
        raise ValueError("no labelled days: materialize the daily build and ml/flight_features first")
    return days[0], last["d"][0]


def load_labels(settings: Settings, start: date, end: date) -> pl.DataFrame:
    (flights,) = read_warehouse(
        settings,
        (
            "select flight_id, cancelled, diverted, arr_delay from curated.fct_flights "
            "where flight_date >= ? and flight_date < ?",
            [start, end],
        ),
    )
    return labels(flights)


# ML tables in the warehouse DuckLake (schema ``ml``), written per day in one transaction: a day
# is replaced whole or not at all, and readers see the last committed snapshot.
ML_SCHEMA = "ml"
SCORES_TABLE = "flight_delay_scores"
BACKTEST_SCORES_TABLE, BACKTEST_METRICS_TABLE = "backtest_scores", "backtest_metrics"
REGISTRY_TABLE, AUDIT_TABLE = "model_registry", "model_audit"  # the registry's exports
# What analysts read about each ML table of the lake (the published catalog's table comments).
LAKE_TABLE_DESCRIPTIONS = {
    "flight_features": "Point-in-time day-ahead features per flight (see ml.feature_definitions).",
    "flight_features_nowcast_2h": "Point-in-time nowcast features per flight (see ml.feature_definitions).",
    SCORES_TABLE: "Current scores: one p_late per scheduled flight and horizon (day_ahead: at 22:00 New York time "
    "the evening before; nowcast_2h: two hours before departure) from that horizon's production "
    "model, with the prediction time as_of.",
    BACKTEST_SCORES_TABLE: "Walk-forward backtest: every flight of a month scored by a model trained only on days "
    "strictly before that month (out of sample by construction).",
    BACKTEST_METRICS_TABLE: "Out-of-sample ROC AUC, PR AUC, Brier and calibration error per backtest month.",
    REGISTRY_TABLE: "Every trained model version with status and holdout metrics.",
    AUDIT_TABLE: "Append-only audit: registrations, pre-production checks, promotions, refusals, rollbacks.",
}
# Which days of which table were written, with their row count: a day written with no rows (an
# accepted empty delivery) is there, a day never written is not.
PARTITIONS_TABLE = "_partitions"
CONFLICT_ATTEMPTS = 4  # a write that lost a commit race to another machine is made again, this often at most


def _lake_type(con, frame: pl.DataFrame) -> dict[str, str]:
    con.register("_frame", frame.head(0).to_arrow())
    try:
        return {name: dtype for name, dtype, *_ in con.execute("describe select * from _frame").fetchall()}
    finally:
        con.unregister("_frame")


def write_lake_days(
    settings: Settings,
    table: str,
    days: dict[date, pl.DataFrame],
    horizon: str | None = None,
    before_replace=None,
    *,
    schema: str = ML_SCHEMA,
    day_column: str = "flight_date",
) -> None:
    """Replace ``days`` of ``<schema>.<table>`` (of ``horizon`` when the table holds several) with
    the given rows, in one transaction; a row's day is its ``day_column``. The table is created
    from the first frame; a column it lacks is added (an older day reads it as null).
    ``before_replace(con, days)`` runs in the same transaction before the old rows go (e.g. to
    archive them)."""
    if not days:
        return

    def write(con) -> None:
        con.execute(
            f"create table if not exists {schema}.{PARTITIONS_TABLE} (table_name varchar, "
            "horizon varchar, flight_date date, row_count bigint, written_at timestamptz)"
        )
        frame = pl.concat(list(days.values()), how="diagonal_relaxed")
        _ensure_table(con, schema, table, frame)
        day_list = sorted(days)
        where = f'"{day_column}" in (select unnest($days))' + (" and horizon = $horizon" if horizon else "")
        params = {"days": day_list, **({"horizon": horizon} if horizon else {})}
        if before_replace is not None:
            before_replace(con, day_list)
        con.execute(f'delete from {schema}."{table}" where {where}', params)
        _insert(con, schema, table, frame)
        # _partitions.flight_date is the partition's day, whatever the table calls its day column.
        con.execute(
            f"delete from {schema}.{PARTITIONS_TABLE} where table_name = $table "
            f"and horizon is not distinct from $h and flight_date in (select unnest($days))",
            {"table": table, "h": horizon, "days": day_list},
        )
        con.executemany(
            f"insert into {schema}.{PARTITIONS_TABLE} values (?, ?, ?, ?, now())",
            [[table, horizon, d, days[d].height] for d in day_list],
        )

    _in_lake_transaction(settings, schema, write)


def replace_lake_table(settings: Settings, table: str, rows: pl.DataFrame, *, schema: str = ML_SCHEMA) -> None:
    """Replace all of ``<schema>.<table>`` with ``rows`` in one transaction (an export that is
    rewritten whole, e.g. the registry's). A column of nulls only is typed text."""
    rows = rows.with_columns(pl.col(c).cast(pl.String) for c, t in rows.schema.items() if t == pl.Null)

    def replace(con) -> None:
        con.register("_rows", rows.to_arrow())
        try:
            con.execute(f'create or replace table {schema}."{table}" as select * from _rows')
        finally:
            con.unregister("_rows")

    _in_lake_transaction(settings, schema, replace)


def _in_lake_transaction(settings: Settings, schema: str, body) -> None:
    # Writers on other machines (a PostgreSQL catalog) are not behind this machine's lock: a commit
    # that lost to one of theirs is made again whole (the transaction did not happen, so repeating
    # it is safe); one writer per partition stays the rule (the Dagster pools).
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            with warehouse_writer(settings) as con:
                con.execute("begin transaction")
                try:
                    con.execute(f"create schema if not exists {schema}")
                    body(con)
                    con.execute("commit")
                except BaseException:
                    try:
                        con.execute("rollback")
                    except duckdb.Error:  # a failed commit has already ended the transaction
                        pass
                    raise
            return
        except duckdb.Error as exc:
            if attempt == CONFLICT_ATTEMPTS or not is_commit_conflict(exc):
                raise
            time.sleep(0.2 * attempt + random.random() * 0.3)


def _ensure_table(con, schema: str, table: str, frame: pl.DataFrame) -> None:
    wanted = _lake_type(con, frame)
    have = {
        r[0]: r[1]
        for r in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    if not have:
        cols = ", ".join(f'"{c}" {t}' for c, t in wanted.items())
        con.execute(f'create table {schema}."{table}" ({cols})')
    else:
        for column in wanted.keys() - have.keys():
            con.execute(f'alter table {schema}."{table}" add column "{column}" {wanted[column]}')


def _insert(con, schema: str, table: str, frame: pl.DataFrame) -> None:
    if frame.height:
        con.register("_rows", frame.to_arrow())
        con.execute(f'insert into {schema}."{table}" by name select * from _rows')
        con.unregister("_rows")


def lake_days(settings: Settings, table: str, horizon: str | None = None, *, schema: str = ML_SCHEMA) -> list[date]:
    """The days of ``<schema>.<table>`` (of ``horizon``) written so far, oldest first."""
    found = _query_lake(
        settings,
        PARTITIONS_TABLE,
        f"select flight_date from {schema}.{PARTITIONS_TABLE} "
        "where table_name = ? and horizon is not distinct from ? order by 1",
        [table, horizon],
        schema,
    )
    return found["flight_date"].to_list() if found.height else []


def read_lake_days(
    settings: Settings,
    table: str,
    start: date | None = None,
    end: date | None = None,
    horizon: str | None = None,
    columns: list[str] | None = None,
    *,
    schema: str = ML_SCHEMA,
    day_column: str = "flight_date",
    order_by: str = "flight_date, flight_id",
    ids: list[str] | None = None,
) -> pl.DataFrame:
    """Rows of ``<schema>.<table>`` for days in [start, end) (all days without bounds), of
    ``horizon``, ordered; only ``columns`` if given, only the flights ``ids`` if given. Empty (no
    columns) when nothing is there."""
    cols = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    bounds = [
        (f'"{day_column}" >= ?', start),
        (f'"{day_column}" < ?', end),
        ("horizon = ?", horizon),
        ("flight_id in (select unnest(?::varchar[]))", ids),
    ]
    where = ["true", *(test for test, value in bounds if value is not None)]
    params = [value for _, value in bounds if value is not None]
    return _query_lake(
        settings,
        table,
        f'select {cols} from {schema}."{table}" where {" and ".join(where)} order by {order_by}',
        params,
        schema,
    )


def read_backtest_scores(settings: Settings, start: date | None = None, end: date | None = None) -> pl.DataFrame:
    """Walk-forward backtest scores of the days in [start, end), by day then flight."""
    return read_lake_days(settings, BACKTEST_SCORES_TABLE, start, end)


def read_backtest_metrics(settings: Settings) -> pl.DataFrame:
    """Every walk-forward backtest month's metrics row, month order."""
    return read_lake_table(settings, BACKTEST_METRICS_TABLE, order_by="month")


def read_lake_table(settings: Settings, table: str, order_by: str, *, schema: str = ML_SCHEMA) -> pl.DataFrame:
    """All of ``<schema>.<table>``, ordered; empty (no columns) when it was never written."""
    return _query_lake(settings, table, f'select * from {schema}."{table}" order by {order_by}', [], schema)


def _query_lake(settings: Settings, table: str, sql: str, params: list, schema: str = ML_SCHEMA) -> pl.DataFrame:
    """``sql`` over ``<schema>.<table>``; empty (no columns) when the table was never written."""
    if not settings.warehouse_catalog.exists() and settings.warehouse_metadata.startswith("sqlite:"):
        return pl.DataFrame()  # no lake yet (attaching would create one)
    try:
        (frame,) = read_warehouse(settings, (sql, params))
    except duckdb.CatalogException as exc:
        if f"{table} does not exist" in str(exc) or f"{schema} does not exist" in str(exc):
            return pl.DataFrame()
        raise
    except duckdb.InvalidInputException as exc:
        # A catalog file prepared by a writer's lock that no write has made a lake yet.
        if "creating a new DuckLake is explicitly disabled" in str(exc):
            return pl.DataFrame()
        raise
    return frame


def feature_definitions_path(settings: Settings) -> Path:
    return ml_dir(settings) / "feature_definitions.parquet"


def catalog_views(settings: Settings):
    """The ``ml`` schema of the analyst catalog: views over the ML zone's parquet."""
    return [
        ExternalView(
            "ml",
            "feature_definitions",
            str(feature_definitions_path(settings)),
            "Name, description, dtype and owner of every model feature.",
        ),
        ExternalView(
            "ml",
            "leakage_audit",
            str(ml_dir(settings) / "leakage_audit.parquet"),
            "Single-feature and null-indicator ROC AUC of every feature on the newest training window.",
        ),
    ]
