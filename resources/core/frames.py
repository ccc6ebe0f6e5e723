"""Polars frames that hold only their own bytes."""

from __future__ import annotations

import polars as pl


def compact(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` holding only its own bytes. Polars' strings are views: the few rows a join, a
    filter or a sample keeps of a large frame still hold all of that frame's string buffers, so a
    loop that keeps a small part of each chunk read holds every chunk (at SF=100, the training
    sample and the monitoring's Evidently samples: tens of GB). A round trip through Arrow copies
    what is referenced (20 chunks of 650k rows, 15k kept of each: 524 MiB resident without it,
    240 MiB with it)."""
    return pl.from_arrow(frame.to_arrow())
