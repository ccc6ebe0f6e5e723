"""Model-quality pictures: ROC, precision-recall and calibration curves as one PNG.

Rendered with matplotlib's Agg backend (no display, no network) and embedded in Dagster
metadata markdown as a data URI, so the UI shows the picture without serving any file.
A 3-panel PNG at 100 dpi is ~40-60 KB.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from resources.ml.model.training import calibration_table


def curves_png(y: np.ndarray, p: np.ndarray, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.4), dpi=100)
    roc, pr, cal = fig.subplots(1, 3)
    fpr, tpr, _ = roc_curve(y, p)
    roc.plot(fpr, tpr, color="#1f77b4")
    roc.plot([0, 1], [0, 1], color="#999", linestyle=":")
    roc.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate")
    precision, recall, _ = precision_recall_curve(y, p)
    pr.plot(recall, precision, color="#d62728")
    pr.axhline(float(np.mean(y)), color="#999", linestyle=":")
    pr.set(title="precision-recall", xlabel="recall", ylabel="precision", ylim=(0, 1))
    bins = calibration_table(y, p)
    cal.plot([b["mean_predicted"] for b in bins], [b["observed_rate"] for b in bins], marker="o", color="#2ca02c")
    cal.plot([0, 1], [0, 1], color="#999", linestyle=":")
    cal.set(
        title="calibration (deciles of p_late)",
        xlabel="mean predicted",
        ylabel="observed late rate",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def md_image(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
