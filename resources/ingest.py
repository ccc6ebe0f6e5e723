"""Reading deliveries under their schema contract.

A delivery is read with every value as text, then each column is cast as the contract says.
A value that does not cast, or a null where the contract forbids one, sends its row to quarantine
with the reason; nothing is dropped: ``delivered == raw + quarantined`` for every partition.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from resources.sources import ColumnContract, SourceSpec

LINEAGE_COLUMNS = ("_batch_id", "_source_file", "_source_row", "_ingested_at")
REASON_COLUMN = "_reason"
DATE_COLUMN = "_delivery_date"


class DeliveryError(RuntimeError):
    """A delivery cannot be ingested at all (missing, unreadable, or lacks a required column)."""


def read_delivery(spec: SourceSpec, path: Path) -> pl.DataFrame:
    """All columns as text plus ``_source_row`` (1-based data row in the file)."""
    if not path.exists():
        raise DeliveryError(f"source {spec.name!r}: delivery file {path} does not exist")
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise DeliveryError(
                        f"source {spec.name!r}: {path} must hold exactly one file, has {members}"
                    )
                data: bytes | Path = zf.read(members[0])
        else:
            data = path
        df = pl.read_csv(
            io.BytesIO(data) if isinstance(data, bytes) else data,
            infer_schema=False,
            null_values=list(spec.null_values),
            row_index_name="_source_row",
            row_index_offset=1,
        )
    except DeliveryError:
        raise
    except Exception as exc:  # polars raises several types for malformed files
        raise DeliveryError(f"source {spec.name!r}: cannot read delivery {path}: {exc}") from exc
    missing = [c.name for c in spec.columns if c.required and c.name not in df.columns]
    if missing:
        raise DeliveryError(
            f"source {spec.name!r}: delivery {path} is missing required column(s) "
            + ", ".join(repr(m) for m in missing)
            + f" (it has: {', '.join(c for c in df.columns if c != '_source_row')})"
        )
    for c in spec.columns:  # optional columns that were not delivered arrive as nulls
        if c.name not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(c.name))
    return df


def _cast(col: ColumnContract) -> pl.Expr:
    text = pl.col(col.name).str.strip_chars()
    match col.type:
        case "int":
            return text.cast(pl.Int64, strict=False)
        case "float":
            return text.cast(pl.Float64, strict=False)
        case "date":
            return text.str.to_date("%Y-%m-%d", strict=False)
        case "datetime_utc":
            return (
                text.str.replace(r"Z$", "").str.replace("T", " ")
                .str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
                .dt.replace_time_zone("UTC")
            )
        case _:
            return pl.col(col.name)


def _date_expr(spec: SourceSpec) -> pl.Expr:
    cols = spec.partitioning.date_columns if spec.partitioning else ()
    if len(cols) == 3:
        y, m, d = (pl.col(c).cast(pl.Int32, strict=False) for c in cols)
        # pl.date raises on impossible dates (2013-02-30); build text and parse leniently instead.
        text = pl.format("{}-{}-{}", y, m.cast(pl.String).str.zfill(2), d.cast(pl.String).str.zfill(2))
        return text.str.to_date("%Y-%m-%d", strict=False)
    column = next(c for c in spec.columns if c.name == cols[0])
    if column.type == "date":
        return pl.col(column.name)  # already cast by the contract
    return pl.col(column.name).cast(pl.String).str.to_date("%Y-%m-%d", strict=False)


@dataclass
class ContractResult:
    valid: pl.DataFrame  # typed, plus _source_row (and _delivery_date when partitioned)
    rejected: pl.DataFrame  # as delivered (text), plus _source_row, _reason (and _delivery_date)
    unexpected_columns: list[str] = field(default_factory=list)


def apply_contract(spec: SourceSpec, df: pl.DataFrame) -> ContractResult:
    contract_names = [c.name for c in spec.columns]
    extra = [c for c in df.columns if c not in contract_names and c != "_source_row"]
    typed = df.select(
        "_source_row",
        *[_cast(c).alias(c.name) for c in spec.columns],
        *[pl.col(c) for c in extra],  # kept as delivered text, reported as unexpected
    )
    # Build per-column reason strings in one pass over the typed frame.
    reason_exprs = []
    for c in spec.columns:
        raw_val = pl.col(f"__raw_{c.name}")
        if c.type != "string":
            reason_exprs.append(
                pl.when(raw_val.is_not_null() & pl.col(c.name).is_null())
                .then(pl.format("column '{}': {} is not a valid {}", pl.lit(c.name), raw_val, pl.lit(c.type)))
            )
        if not c.nullable:
            reason_exprs.append(
                pl.when(raw_val.is_null()).then(pl.lit(f"column '{c.name}': null is not allowed"))
            )
    checked = typed.with_columns(
        [df[c.name].alias(f"__raw_{c.name}") for c in spec.columns]
    )
    if spec.partitioning:
        date_cols = spec.partitioning.date_columns
        checked = checked.with_columns(_date_expr(spec).alias(DATE_COLUMN))
        reason_exprs.append(
            pl.when(pl.col(DATE_COLUMN).is_null() & pl.all_horizontal(pl.col(list(date_cols)).is_not_null()))
            .then(pl.lit(f"columns {list(date_cols)} do not form a valid date"))
        )
    checked = checked.with_columns(
        pl.concat_str(reason_exprs, separator="; ", ignore_nulls=True).alias(REASON_COLUMN)
        if reason_exprs
        else pl.lit(None, dtype=pl.String).alias(REASON_COLUMN)
    )
    # concat_str yields "" when every part is null.
    bad = pl.col(REASON_COLUMN).is_not_null() & (pl.col(REASON_COLUMN) != "")
    keep_date = [DATE_COLUMN] if spec.partitioning else []
    valid = checked.filter(~bad).select("_source_row", *contract_names, *extra, *keep_date)
    rejected = (
        checked.filter(bad)
        .select(
            "_source_row",
            *[pl.col(f"__raw_{c}").alias(c) for c in contract_names],
            *extra,
            REASON_COLUMN,
            *keep_date,
        )
    )
    return ContractResult(valid=valid, rejected=rejected, unexpected_columns=extra)


def with_lineage(df: pl.DataFrame, batch_id: str, source_file: Path, ingested_at: datetime) -> pl.DataFrame:
    return df.with_columns(
        pl.lit(batch_id).alias("_batch_id"),
        pl.lit(str(source_file)).alias("_source_file"),
        pl.lit(ingested_at).dt.replace_time_zone("UTC").alias("_ingested_at")
        if ingested_at.tzinfo is None
        else pl.lit(ingested_at).alias("_ingested_at"),
    ).select(*[c for c in df.columns if c not in ("_source_row", DATE_COLUMN)], *LINEAGE_COLUMNS)
