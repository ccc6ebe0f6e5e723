"""The labelled window a model is trained and judged on, read a week at a time.

Holding the whole window at once (every feature of train, validation and test, pandas copies of
validation and test, the train window with predictions for the drift profile) grows with the data:
9.9 GiB at 10x the year (benchmarks/scale.py), ~100 GiB at 100x. So a part of the window is only
ever a sequence of chunks of ``CHUNK_DAYS`` days (~6.5k flights on the year, ~650k at 100x), and
what must be in memory at once is bounded by a row count, not by the data:

- the training sample (``TRAIN_SAMPLE_ROWS``, resources/ml/model/training.py): chosen from the flight ids
  alone (the same rows and order ``training_sample`` picks from the whole frame), then read;
- the leakage audit and the drift profile: the train window up to ``AUDIT_MAX_ROWS`` rows (the
  whole window on the year: 225k flights), else a reproducible sample of that size;
- validation and test: predicted chunk by chunk, keeping only labels and probabilities.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl

from resources.core.frames import compact
from resources.core.settings import Settings
from resources.ml.features.availability import DAY_AHEAD
from resources.ml.lake import load_labels, read_features
from resources.ml.model.training import TRAIN_SAMPLE_ROWS, TRAIN_SAMPLE_SEED, TimeSplit

# A 31-day chunk of every feature is 2.9 M rows at SF=100, several GB once joined to its labels
# and sorted. Chunk boundaries change no result: flight ids begin with the date, so chunks sorted
# by flight id concatenate to the same order as one read.
CHUNK_DAYS = 7
# Single-feature AUCs and monthly drift statistics are as sharp on 500k rows as on 22 M (the
# standard error of an AUC on 500k rows is ~0.001); the year's train window (225k) is used whole.
AUDIT_MAX_ROWS = 500_000


@dataclass(frozen=True)
class LabelledWindow:
    """A model's time split; parts are "train", "validation", "test", "all" or a (start, end)."""

    settings: Settings
    split: TimeSplit | None = None
    horizon: str = DAY_AHEAD  # whose feature files are read
    # Labels by chunk, read once: the backtest samples [first day, month) for every month. With
    # month-long chunks, reading its 11 samples and months took 25.3 s with this cache and 28.1 s
    # without (2026-12-02, side by side, another job running); the fits take ~100 s.
    # Two columns (~35 bytes a flight: ~1.2 GB at SF=100).
    _labels: dict = field(default_factory=dict, compare=False, repr=False)

    def bounds(self, part: str | tuple[date, date]) -> tuple[date, date]:
        if isinstance(part, tuple):
            return part
        s = self.split
        assert s is not None, f"part {part!r} needs a time split"
        return {
            "train": (s.train_start, s.validation_start),
            "validation": (s.validation_start, s.test_start),
            "test": (s.test_start, s.test_end),
            "all": (s.train_start, s.test_end),
        }[part]

    def labels(self, start: date, stop: date) -> pl.DataFrame:
        if (start, stop) not in self._labels:
            self._labels[(start, stop)] = load_labels(self.settings, start, stop)
        return self._labels[(start, stop)]

    def spans(self, part: str | tuple[date, date]) -> Iterator[tuple[date, date]]:
        start, end = self.bounds(part)
        while start < end:
            stop = min(start + timedelta(days=CHUNK_DAYS), end)
            yield start, stop
            start = stop

    def chunks(self, part: str | tuple[date, date], columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
        """Features (or only ``columns`` of them) plus ``is_late`` of ``part``, CHUNK_DAYS at a
        time, in date then flight order."""
        for _, _, chunk in self._spans_read(part, columns):
            yield chunk

    def _spans_read(
        self, part: str | tuple[date, date], columns: list[str] | None = None
    ) -> Iterator[tuple[date, date, pl.DataFrame]]:
        for start, stop in self.spans(part):
            features = read_features(self.settings, start, stop, self.horizon, columns)
            if features.height:
                yield (
                    start,
                    stop,
                    features.join(self.labels(start, stop), on="flight_id", how="inner").sort("flight_id"),
                )

    def sample(
        self,
        part: str | tuple[date, date] = "train",
        max_rows: int | None = TRAIN_SAMPLE_ROWS,
        seed: int = TRAIN_SAMPLE_SEED,
    ) -> tuple[pl.DataFrame, int]:
        """The rows ``training_sample`` would draw from the whole part (the same rows, in the same
        order), and how many the part holds; all of it when it holds at most ``max_rows``."""
        available = sum(c.height for c in self.chunks(part, columns=["flight_id"]))
        if available == 0:
            return pl.DataFrame(), 0
        if max_rows is None or available <= max_rows:
            return pl.concat(list(self.chunks(part)), how="vertical_relaxed"), available
        # ``DataFrame.sample`` draws positions from the height and the seed alone, and the chunks
        # concatenate in flight id order: so these are the positions training_sample draws from
        # the whole part sorted by flight id.
        chosen = (
            pl.DataFrame({"_pos": pl.arange(0, available, eager=True)})
            .sample(n=max_rows, seed=seed)
            .with_row_index("_order")
        )
        # Each week's ids are read again and only the chosen flights' features: reading every
        # feature of a week to keep 1.5 % of it was ~40 % of the backtest at SF=100 (a 7-day chunk
        # there: 2.5 s whole and ordered, 0.27 s for 15,000 flights).
        parts, offset = [], 0
        for start, stop, ids in self._spans_read(part, ["flight_id"]):
            mine = chosen.filter((pl.col("_pos") >= offset) & (pl.col("_pos") < offset + ids.height))
            offset += ids.height
            if mine.height == 0:
                continue
            at = ids.with_row_index("_pos", offset=offset - ids.height).with_columns(pl.col("_pos").cast(pl.Int64))
            picked = at.join(mine, on="_pos", how="inner").select("flight_id", "_order")
            features = read_features(self.settings, start, stop, self.horizon, ids=picked["flight_id"].to_list())
            labelled = features.join(self.labels(start, stop), on="flight_id", how="inner")
            parts.append(compact(labelled.join(picked, on="flight_id", how="inner")))
        rows = pl.concat(parts, how="vertical_relaxed")
        return rows.sort("_order").drop("_order"), available

    def data_version(self) -> str:
        """A fingerprint of every labelled row of the window (chunk by chunk, in date order)."""
        digest = hashlib.sha256()
        for chunk in self.chunks("all"):
            digest.update(chunk.hash_rows().to_numpy().tobytes())
        return digest.hexdigest()[:16]
