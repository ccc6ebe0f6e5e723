"""The monthly trend: ROC AUC, drift share, late rate and mean p_late by month, as a PNG for the
index and as Dagster metadata. matplotlib is imported when a chart is drawn, not with this module."""

from __future__ import annotations

import base64
import io

import numpy as np

from resources.monitoring.samples import IN_SAMPLE, MIXED, NOT_JUDGED


def trend_rows(entries: list[dict]) -> list[dict]:
    """One row per month: quality and drift figures side by side."""
    by_month: dict[str, dict] = {}
    for e in entries:
        row = by_month.setdefault(e["period"], {"period": e["period"]})
        if e["kind"] == "quality":
            row.update(
                {
                    k: e.get(k)
                    for k in (
                        "roc_auc",
                        "in_sample_roc_auc",
                        "backtest_roc_auc",
                        "late_rate",
                        "holdout_roc_auc",
                        "out_of_sample_flights",
                        "quality_alarm",
                        "quality_status",
                        "quality_reason",
                    )
                }
            )
            row["quality_sample"] = e.get("sample")
        elif e["kind"] == "drift":
            row.update(
                {
                    "drift_share": e.get("drift_share"),
                    "drift_alarm": e.get("alarm"),
                    "drift_status": e.get("status"),
                    "drift_reason": e.get("reason"),
                    "threshold_fit": e.get("threshold_fit"),
                    "prediction_drift": e.get("prediction_drift"),
                    "prediction_mean": e.get("prediction_mean"),
                    "drift_sample": e.get("sample"),
                }
            )
    for row in by_month.values():
        row["sample"] = row.get("quality_sample") or row.get("drift_sample")
    return [by_month[k] for k in sorted(by_month)]


def trend_png(rows: list[dict]) -> bytes:
    """Three panels by month: ROC AUC (out-of-sample solid; in-sample hollow grey on a shaded
    band; backtest dashed), drift share (alarm months red), late rate vs mean p_late."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 7.2), dpi=90)
    ax_auc, ax_drift, ax_rate = fig.subplots(3, 1, sharex=True)
    x = np.arange(len(rows))
    labels = [r["period"] for r in rows]

    def series(key):
        return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])

    for i, r in enumerate(rows):
        if r.get("sample") in (IN_SAMPLE, MIXED):
            for ax in (ax_auc, ax_drift, ax_rate):
                ax.axvspan(i - 0.5, i + 0.5, color="#f3d6d6" if r["sample"] == IN_SAMPLE else "#f7ebd6", lw=0)
    ax_auc.plot(x, series("roc_auc"), "o-", color="#1f77b4", label="ROC AUC, out of sample")
    ax_auc.plot(
        x,
        series("in_sample_roc_auc"),
        "o",
        mfc="none",
        color="#888",
        label="ROC AUC, IN-SAMPLE (trained/selected on: not a quality estimate)",
    )
    if np.isfinite(series("backtest_roc_auc")).any():
        ax_auc.plot(
            x, series("backtest_roc_auc"), "s--", color="#ff7f0e", ms=4, label="walk-forward backtest (out of sample)"
        )
    holdout = next((r["holdout_roc_auc"] for r in reversed(rows) if r.get("holdout_roc_auc") is not None), None)
    if holdout is not None:
        ax_auc.axhline(holdout, color="#1f77b4", ls=":", lw=1, label=f"holdout {holdout:.3f}")
    alarmed = [
        (i, r.get("roc_auc") if r.get("roc_auc") is not None else r.get("backtest_roc_auc"))
        for i, r in enumerate(rows)
        if r.get("quality_alarm")
    ]
    alarmed = [(i, v) for i, v in alarmed if v is not None]
    if alarmed:
        ax_auc.plot(
            [i for i, _ in alarmed],
            [v for _, v in alarmed],
            "X",
            color="#d62728",
            ms=11,
            label="quality alarm (outside the backtest range)",
        )
    ax_auc.set_ylabel("ROC AUC")
    ax_auc.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax_auc.set_title("shaded: in-sample months (red) / mixed (amber)", fontsize=8, loc="right")
    share = series("drift_share")
    colours = ["#d62728" if r.get("drift_alarm") else "#2ca02c" for r in rows]
    ax_drift.bar(x, np.nan_to_num(share), color=colours, width=0.6)
    for i, r in enumerate(rows):
        if r.get("drift_status") == NOT_JUDGED:
            ax_drift.text(i, 0.01, "not judged", ha="center", fontsize=7, rotation=90, va="bottom")
    ax_drift.set_ylabel("drift share\n(red = alarm)")
    ax_drift.set_ylim(0, max(0.3, float(np.nanmax(share)) * 1.2 if np.isfinite(share).any() else 0.3))
    ax_rate.plot(x, series("late_rate"), "o-", color="#9467bd", label="late rate (actual)")
    ax_rate.plot(x, series("prediction_mean"), "o--", color="#8c564b", label="mean p_late")
    ax_rate.set_ylabel("rate")
    ax_rate.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax_rate.set_xticks(x, labels, rotation=45, fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def md_trend(entries: list[dict]) -> str:
    """The trend chart as Dagster metadata markdown (a data URI: the UI needs no file server)."""
    rows = trend_rows(entries)
    if not rows:
        return "no reports yet"
    return (
        f"![trend]({data_uri(trend_png(rows))})\n\nShaded months are in-sample for the scoring model: "
        "their ROC AUC (hollow grey) is not a quality estimate."
    )
