"""Reading deliveries under their schema contract.

A delivery is read with every value as text, then each column is cast as the contract says.
A value that does not cast, or a null where the contract forbids one, sends its row to quarantine
with the reason; so does a ragged record (more or fewer fields than the header), which polars
would silently pad with nulls. Nothing is dropped: ``delivered == raw + quarantined`` for every
partition.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from resources.raw.sources import ColumnContract, SourceSpec

LINEAGE_COLUMNS = ("_batch_id", "_source_file", "_source_row", "_ingested_at")
REASON_COLUMN = "_reason"
DATE_COLUMN = "_delivery_date"
RECORD_ERROR = "_record_error"  # set by read_delivery on ragged records; overrides other reasons
RAGGED_PREFIX = "row has "


class DeliveryError(RuntimeError):
    """A delivery cannot be ingested at all (missing, unreadable, or lacks a required column)."""


def _delivery_bytes(spec: SourceSpec, path: Path) -> bytes:
    if path.suffix != ".zip":
        return path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise DeliveryError(f"source {spec.name!r}: {path} must hold exactly one file, has {members}")
        return zf.read(members[0])


@dataclass
class RecordScan:
    """Field counts per physical record, as Python's csv module (quote-aware) delimits them."""

    header: list[str]
    lines: list[str]  # physical lines, ends kept
    header_end: int  # lines[:header_end] hold the header
    ends: list[int]  # record i spans lines[ends[i-1]:ends[i]] (ends[-1] = header_end)
    ragged: dict[int, list[str]]  # record index -> its fields, for records of the wrong width
    cut: int | None = None  # the last record, when the text does not end with a line end


CUT_PREFIX = "last row not ended by a line end"
CUT_REASON = f"{CUT_PREFIX}: it may be cut short (a truncated or still-copying delivery), re-deliver the file whole"


def scan_records(text: str) -> RecordScan:
    """One pass over the text (~0.6 s for the 336,776 flights). A blank line is a record of
    0 fields, as polars keeps it as an all-null row. A last record not followed by a line end
    is set apart (``cut``): a cut-off ``733`` reads as a valid ``7``."""
    csv.field_size_limit(sys.maxsize)
    lines = io.StringIO(text, newline="").readlines()  # \n, \r\n, \r: the reader's own line ends
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise ValueError("it is empty (no header line)")
    header_end = reader.line_num
    width = len(header)
    ends: list[int] = []
    ragged: dict[int, list[str]] = {}
    record: list[str] = []
    for i, record in enumerate(reader):
        ends.append(reader.line_num)
        if len(record) != width and not (width == 1 and not record):
            ragged[i] = record
    cut = None
    if ends and not text.endswith(("\n", "\r")):
        cut = len(ends) - 1
        ragged.setdefault(cut, record)
    return RecordScan(header, lines, header_end, ends, ragged, cut)


def _ragged_reason(fields: list[str], width: int) -> str:
    reason = f"{RAGGED_PREFIX}{len(fields)} fields, header has {width}"
    if len(fields) > width:  # nothing is lost: the fields past the header are kept in the reason
        reason += f" (beyond the header: {json.dumps(fields[width:], ensure_ascii=False)})"
    return reason


def _ragged_frame(scan: RecordScan, names: list[str], nulls: set[str]) -> pl.DataFrame:
    """Ragged records, their fields placed by position for the quarantine (missing ones null)."""
    width = len(names)
    rows = [
        [None if v in nulls else v for v in fields[:width]] + [None] * (width - len(fields))
        for fields in scan.ragged.values()
    ]
    reasons = [_ragged_reason(f, width) for f in scan.ragged.values()]
    if scan.cut is not None:  # one reason, counted once (zone._reason_counts): the cut, with its width
        at, fields = list(scan.ragged).index(scan.cut), scan.ragged[scan.cut]
        reasons[at] = CUT_REASON + (f" ({len(fields)} fields, header has {width})" if len(fields) != width else "")
    return pl.DataFrame(
        {
            "_source_row": [i + 1 for i in scan.ragged],
            **{n: [r[j] for r in rows] for j, n in enumerate(names)},
            RECORD_ERROR: reasons,
        },
        schema={"_source_row": pl.UInt32, **{n: pl.String for n in names}, RECORD_ERROR: pl.String},
    )


def _without_ragged(scan: RecordScan) -> str:
    """The header and the well-formed records' own lines, verbatim."""
    keep = scan.lines[: scan.header_end]
    start = scan.header_end
    for i, end in enumerate(scan.ends):
        if i not in scan.ragged:
            keep.extend(scan.lines[start:end])
        start = end
    return "".join(keep)


def read_delivery(spec: SourceSpec, path: Path) -> pl.DataFrame:
    """All columns as text plus ``_source_row`` (1-based data record in the file); ragged
    records carry their reason in ``RECORD_ERROR`` (null for well-formed ones)."""
    if not path.exists():
        raise DeliveryError(f"source {spec.name!r}: delivery file {path} does not exist")
    try:
        data = _delivery_bytes(spec, path)
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        try:
            scan = scan_records(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"it is not UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r})") from exc
        well_formed = _without_ragged(scan).encode() if scan.ragged else data
        df = pl.read_csv(io.BytesIO(well_formed), infer_schema=False, null_values=list(spec.null_values))
    except DeliveryError:
        raise
    except Exception as exc:  # zipfile, csv and polars raise several types for malformed files
        raise DeliveryError(f"source {spec.name!r}: cannot read delivery {path}: {exc}") from exc
    expected = len(scan.ends) - len(scan.ragged)
    if df.height != expected or len(df.columns) != len(scan.header):
        # The two parsers must agree on records, or a row number would point at the wrong line.
        raise DeliveryError(
            f"source {spec.name!r}: cannot delimit the records of {path} unambiguously (csv module: "
            f"{expected} well-formed records of {len(scan.header)} fields, polars: {df.height} of "
            f"{len(df.columns)}); check its quoting and line ends"
        )
    rows = [i + 1 for i in range(len(scan.ends)) if i not in scan.ragged] if scan.ragged else None
    df = df.with_columns(
        pl.Series("_source_row", rows, dtype=pl.UInt32)
        if rows is not None
        else pl.int_range(1, df.height + 1, dtype=pl.UInt32).alias("_source_row"),
        pl.lit(None, dtype=pl.String).alias(RECORD_ERROR),
    )
    if scan.ragged:
        ragged = _ragged_frame(
            scan, [c for c in df.columns if c not in ("_source_row", RECORD_ERROR)], set(spec.null_values)
        )
        df = pl.concat([df, ragged.select(df.columns)]).sort("_source_row")
    missing = [c.name for c in spec.columns if c.required and c.name not in df.columns]
    if missing:
        raise DeliveryError(
            f"source {spec.name!r}: delivery {path} is missing required column(s) "
            + ", ".join(repr(m) for m in missing)
            + f" (it has: {', '.join(c for c in df.columns if c not in ('_source_row', RECORD_ERROR))})"
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
                text.str.replace(r"Z$", "")
                .str.replace("T", " ")
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
    extra = (
        []
        if spec.drop_other_columns
        else [c for c in df.columns if c not in contract_names and c not in ("_source_row", RECORD_ERROR)]
    )
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
                pl.when(raw_val.is_not_null() & pl.col(c.name).is_null()).then(
                    pl.format("column '{}': {} is not a valid {}", pl.lit(c.name), raw_val, pl.lit(c.type))
                )
            )
        if not c.nullable:
            reason_exprs.append(pl.when(raw_val.is_null()).then(pl.lit(f"column '{c.name}': null is not allowed")))
    checked = typed.with_columns([df[c.name].alias(f"__raw_{c.name}") for c in spec.columns])
    if spec.partitioning:
        date_cols = spec.partitioning.date_columns
        checked = checked.with_columns(_date_expr(spec).alias(DATE_COLUMN))
        reason_exprs.append(
            pl.when(pl.col(DATE_COLUMN).is_null() & pl.all_horizontal(pl.col(list(date_cols)).is_not_null())).then(
                pl.lit(f"columns {list(date_cols)} do not form a valid date")
            )
        )
    # A row repeating an earlier row of the delivery exactly (every delivered field) is a copy,
    # not a second flight: it is quarantined naming the row it repeats, never passed to staging.
    delivered = [c for c in df.columns if c not in ("_source_row", RECORD_ERROR)]
    first = pl.col("__first_row")
    checked = checked.with_columns(df.select(pl.col("_source_row").min().over(delivered).alias("__first_row")))
    reason_exprs.append(
        pl.when(first != pl.col("_source_row")).then(
            pl.format("row repeats row {} of the delivery exactly (a duplicate)", first)
        )
    )
    reason = (
        pl.concat_str(reason_exprs, separator="; ", ignore_nulls=True)
        if reason_exprs
        else pl.lit(None, dtype=pl.String)
    )
    if RECORD_ERROR in df.columns:
        # A ragged record's values sit in the wrong columns: its width is its only reason.
        checked = checked.with_columns(df[RECORD_ERROR])
        reason = pl.coalesce(pl.col(RECORD_ERROR), reason)
    checked = checked.with_columns(reason.alias(REASON_COLUMN))
    # concat_str yields "" when every part is null.
    bad = pl.col(REASON_COLUMN).is_not_null() & (pl.col(REASON_COLUMN) != "")
    keep_date = [DATE_COLUMN] if spec.partitioning else []
    valid = checked.filter(~bad).select("_source_row", *contract_names, *extra, *keep_date)
    rejected = checked.filter(bad).select(
        "_source_row", *[pl.col(f"__raw_{c}").alias(c) for c in contract_names], *extra, REASON_COLUMN, *keep_date
    )
    return ContractResult(valid=valid, rejected=rejected, unexpected_columns=extra)


def with_lineage(df: pl.DataFrame, batch_id: str, source_file: str, ingested_at: datetime) -> pl.DataFrame:
    """``source_file`` is the declared location (SourceSpec.declared_location), never a resolved path."""
    return df.with_columns(
        pl.lit(batch_id).alias("_batch_id"),
        pl.lit(source_file).alias("_source_file"),
        pl.lit(ingested_at).dt.replace_time_zone("UTC").alias("_ingested_at")
        if ingested_at.tzinfo is None
        else pl.lit(ingested_at).alias("_ingested_at"),
    ).select(*[c for c in df.columns if c not in ("_source_row", DATE_COLUMN)], *LINEAGE_COLUMNS)
