"""Batch scoring: every flight of a day scored once by the production model.

The current scores are ``ml.flight_delay_scores`` in the warehouse DuckLake, one row per flight and
horizon; a run's days are replaced in one transaction. A replaced version is kept as an immutable
file in ``scores_archive/`` (named by when it was scored and by which model), so every score ever
published stays traceable (and is in backups).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from resources.core.parquet_io import write_parquet_atomic
from resources.core.settings import Settings
from resources.ml.features.availability import DAY_AHEAD
from resources.ml.lake import (
    ML_SCHEMA,
    SCORES_TABLE,
    feature_days,
    feature_table,
    read_features,
    read_lake_days,
    scores_archive_dir,
    write_lake_days,
)
from resources.ml.model.training import predict

SCORE_SCHEMA = {
    "flight_id": pl.String,
    "flight_date": pl.Date,
    "horizon": pl.String,
    "as_of": pl.Datetime("us", "UTC"),  # the prediction time: the features read only rows known then
    "p_late": pl.Float64,
    "model_version": pl.String,
    "scored_at": pl.Datetime("us", "UTC"),
    "batch_id": pl.String,
}


class ScoreSchemaError(ValueError):
    pass


def score_frame(pipeline, features: pl.DataFrame, model_version: str, scored_at: datetime) -> pl.DataFrame:
    p = predict(pipeline, features)
    scores = features.select(
        "flight_id", "flight_date", "batch_id", "horizon", pl.col("as_of").cast(pl.Datetime("us", "UTC"))
    ).with_columns(
        pl.Series("p_late", p, dtype=pl.Float64),
        pl.lit(model_version).alias("model_version"),
        pl.lit(scored_at).cast(pl.Datetime("us", "UTC")).alias("scored_at"),
    )
    return scores.select(list(SCORE_SCHEMA))


def validate_scores(scores: pl.DataFrame, features: pl.DataFrame) -> None:
    """The production schema and the scoring contract: one probability per flight, no gaps."""
    if dict(scores.schema) != SCORE_SCHEMA:
        raise ScoreSchemaError(f"scores schema {dict(scores.schema)} != production schema {SCORE_SCHEMA}")
    if scores.height != features.height or scores["flight_id"].n_unique() != features.height:
        raise ScoreSchemaError(f"{scores.height} scores for {features.height} flights")
    if scores["p_late"].null_count() or not scores["p_late"].is_between(0, 1).all():
        raise ScoreSchemaError("p_late must be a probability in [0, 1] for every flight")


def write_days(settings: Settings, scores_by_day: dict[date, pl.DataFrame], horizon: str = DAY_AHEAD) -> list[Path]:
    """Replace these days' scores of ``horizon`` in ``ml.flight_delay_scores`` in one transaction;
    the replaced versions are archived first (one file per day and version, named by when it was
    scored and by which model). Returns the archive files written."""
    archived: list[Path] = []

    def archive(con, days: list[date]) -> None:
        old = pl.from_arrow(
            con.execute(
                f'select * from {ML_SCHEMA}."{SCORES_TABLE}" where horizon = ? and flight_date in (select unnest(?)) '
                "order by flight_date, flight_id",
                [horizon, days],
            ).fetch_arrow_table()
        )
        for (day,), rows in old.partition_by("flight_date", as_dict=True).items() if old.height else ():
            stamp = rows["scored_at"][0].strftime("%Y%m%dT%H%M%S%f")
            path = (
                scores_archive_dir(settings, horizon)
                / f"flight_date={day}"
                / f"{stamp}_{rows['model_version'][0]}.parquet"
            )
            write_parquet_atomic(rows.select(list(SCORE_SCHEMA)), path)
            archived.append(path)

    write_lake_days(settings, SCORES_TABLE, scores_by_day, horizon, before_replace=archive)
    return archived


def read_scores(
    settings: Settings, start: date | None = None, end: date | None = None, horizon: str = DAY_AHEAD
) -> pl.DataFrame:
    """The current scores of ``horizon`` for days in [start, end), in the production schema."""
    scores = read_lake_days(settings, SCORES_TABLE, start, end, horizon)
    return scores.select(list(SCORE_SCHEMA)) if scores.height else pl.DataFrame(schema=SCORE_SCHEMA)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# Days scored per predict call. One call per day paid the model's per-call overhead (pandas
# conversion, the column transformer, thread start-up of the trees) 365 times: 24-78 k rows/s on
# the year. Days are read, predicted in one call per chunk and written back per day; a chunk of 31
# days holds ~29 k flights on the year (~12 MB of features), ~2.9 M at 100x (~1.1 GB as pandas),
# so memory stays bounded by the chunk, not by the range being scored. Each flight's probability is
# computed row by row, so batching returns exactly the per-day values.
SCORE_CHUNK_DAYS = 31


def score_days(
    settings: Settings, registry, days: list[date], horizon: str = DAY_AHEAD
) -> tuple[str, dict[date, int], int]:
    """Score each day from its features of ``horizon`` with that horizon's verified production
    model. Returns the model version, each day's row count and how many replaced days were
    archived. A day whose features were built empty (an accepted empty delivery) gets no scores,
    and counts as scored."""
    version = registry.production_version(horizon)
    if version is None:
        raise ValueError(f"no {horizon} production model: train one and launch the promote_model job with an approval")
    pipeline = registry.load(version)
    built = set(feature_days(settings, horizon))
    missing = [day for day in days if day not in built]
    if missing:
        raise ValueError(
            f"no {horizon} features for {', '.join(map(str, missing[:5]))}"
            f"{' ...' if len(missing) > 5 else ''} (ml.{feature_table(horizon)}): materialize them for "
            "those partitions first"
        )
    scored_at, archived, rows = now_utc(), 0, {}
    for i in range(0, len(days), SCORE_CHUNK_DAYS):
        chunk = days[i : i + SCORE_CHUNK_DAYS]
        features = read_features(settings, chunk[0], chunk[-1] + timedelta(days=1), horizon)
        if features.height:
            features = features.filter(pl.col("flight_date").is_in(chunk))
        scores_all = score_frame(pipeline, features, version, scored_at) if features.height else None
        per_day = {}
        for day in chunk:
            if scores_all is None:
                per_day[day] = pl.DataFrame(schema=SCORE_SCHEMA)
                continue
            keep = features["flight_date"] == day  # rows are by day then flight: the same order in both
            scores = scores_all.filter(keep)
            validate_scores(scores, features.filter(keep))
            per_day[day] = scores
        archived += len(write_days(settings, per_day, horizon))  # the chunk's days: one transaction
        rows.update({day: scores.height for day, scores in per_day.items()})
    return version, rows, archived
