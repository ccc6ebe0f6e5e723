"""reports/index.html: the trend chart, both alarms by month side by side, and every report newest
period first, with relative links (opens offline)."""

from __future__ import annotations

import html
from pathlib import Path

from resources.core.parquet_io import write_text_atomic
from resources.monitoring.charts import data_uri, trend_png, trend_rows
from resources.monitoring.report_files import read_sidecars
from resources.monitoring.samples import NOT_JUDGED, sample_label


def _alarm_word(status: str | None, alarm: bool | None) -> str:
    if status is None:
        return "no report"
    return "not judged" if status == NOT_JUDGED else "yes" if alarm else "no"


def alarm_rows(entries: list[dict]) -> list[dict]:
    """Per month: did the drift alarm fire, did the quality alarm fire, do they agree (``-`` when
    either was not judged). Newest month first, as in the index."""
    rows = []
    for r in reversed(trend_rows(entries)):
        drift = _alarm_word(r.get("drift_status"), r.get("drift_alarm"))
        quality = _alarm_word(r.get("quality_status"), r.get("quality_alarm"))
        both = drift in ("yes", "no") and quality in ("yes", "no")
        rows.append(
            {
                "month": r["period"],
                "drift_alarm": drift,
                "quality_alarm": quality,
                "agree": ("yes" if drift == quality else "no") if both else "-",
                "threshold_fit": r.get("threshold_fit"),
                "drift_reason": r.get("drift_reason") or "",
                "quality_reason": r.get("quality_reason") or "",
            }
        )
    return rows


def alarms_table(entries: list[dict]) -> str:
    """The index's per-month table of both alarms. Its rows carry no class (the reports table's
    rows do), and the month cell a ``data-month`` attribute."""
    rows = alarm_rows(entries)
    if not rows:
        return ""
    fit = {"held_out": "held out", "after_training": "after training", "saw_month": "saw the month"}
    body = "\n".join(
        f'<tr data-month="{html.escape(r["month"])}"><td>{html.escape(r["month"])}</td>'
        f'<td class="a-{r["drift_alarm"].replace(" ", "-")}">{html.escape(r["drift_alarm"])}</td>'
        f'<td class="a-{r["quality_alarm"].replace(" ", "-")}">{html.escape(r["quality_alarm"])}</td>'
        f'<td class="agree-{"yes" if r["agree"] == "yes" else "no" if r["agree"] == "no" else "na"}">'
        f"{html.escape(r['agree'])}</td>"
        f"<td>{html.escape(fit.get(r['threshold_fit'] or '', '-'))}</td>"
        f"<td>{html.escape(r['quality_reason'])}</td><td>{html.escape(r['drift_reason'])}</td></tr>"
        for r in rows
    )
    return f"""<h2>Alarms by month: drift vs quality</h2>
<p>Drift alarm: the month's inputs or p_late moved beyond thresholds fitted on windows that never saw
the month (training months: their held-out thresholds). Quality alarm: the month's out-of-sample ROC AUC
fell below, or its calibration error rose above, the range of the walk-forward backtest months before it
(production model's out-of-sample days, else the backtest's scores of the month). Agree: both judged and
both the same.</p>
<table id="alarms"><thead><tr><th>month</th><th>drift alarm</th><th>quality alarm</th><th>agree</th>
<th>drift thresholds</th><th>quality</th><th>drift</th></tr></thead>
<tbody>
{body}
</tbody></table>"""


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _headline(e: dict) -> str:
    if e["kind"] == "drift":
        if e.get("status") == NOT_JUDGED:
            return f"drift not judged: {html.escape(e.get('reason', ''))}"
        text = (
            f"drift share {_fmt(e.get('drift_share'), 2)} ({e['drifted_features']} features past their "
            f"training range), p_late PSI {_fmt(e.get('prediction_drift'))}"
        )
        return (
            f"<b>ALARM</b>: {html.escape(e.get('reason', ''))}"
            if e.get("alarm")
            else text + ": within training variation"
        )
    parts = []
    if e.get("roc_auc") is not None:
        parts.append(f"<b>ROC AUC {e['roc_auc']:.3f}</b> out of sample ({e.get('out_of_sample_flights', 0):,} flights)")
    if e.get("in_sample_roc_auc") is not None:
        parts.append(
            f'<span class="in-sample">in-sample ROC AUC {e["in_sample_roc_auc"]:.3f} '
            f"({e.get('in_sample_flights', 0):,} flights the model was trained or selected on: "
            f"not a quality estimate)</span>"
        )
    if e.get("backtest_roc_auc") is not None:
        parts.append(f"walk-forward backtest ROC AUC {e['backtest_roc_auc']:.3f} (out of sample)")
    parts.append(f"late rate {_fmt(e.get('late_rate'))}")
    if e.get("quality_alarm"):
        parts.insert(0, f"<b>QUALITY ALARM</b>: {html.escape(e.get('quality_reason') or '')}")
    return "; ".join(parts)


def build_index(reports_dir: Path) -> Path:
    """reports/index.html: trend chart (embedded PNG), then every report newest period first,
    relative links (offline)."""
    entries = read_sidecars(reports_dir)
    entries.sort(key=lambda e: (e["period"], e["kind"]), reverse=True)
    rows = trend_rows(entries)
    chart = (
        (
            f'<img id="trend" alt="monthly trend: ROC AUC, drift share, late rate and mean p_late" '
            f'src="{data_uri(trend_png(rows))}">'
        )
        if rows
        else "<p>No reports yet.</p>"
    )
    body = "\n".join(
        f'<tr class="{html.escape(e.get("sample") or "")}"><td>{html.escape(e["period"])}</td>'
        f"<td>{html.escape(e['kind'])}</td><td>{html.escape(sample_label(e.get('sample') or ''))}</td>"
        f"<td>{html.escape(e['model_version'])}</td><td>{_headline(e)}</td>"
        + (
            f'<td><a href="{html.escape(e["html"])}">{html.escape(Path(e["html"]).name)}</a></td></tr>'
            if e.get("html")
            else "<td>-</td></tr>"
        )
        for e in entries
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flight delay model: monitoring reports</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}
tr.in_sample td{{background:#fbeaea}} tr.mixed td{{background:#fdf5e6}} .in-sample{{color:#a00}} img{{max-width:100%}}
td.a-yes{{background:#f8d7da;font-weight:600}} td.agree-no{{background:#fff3cd;font-weight:600}}</style>
</head><body>
<h1>Flight delay model: monitoring reports</h1>
{chart}
<p>{len(entries)} reports, newest first. <b>Quality</b> compares scores with actual arrivals (late = 15+
minutes, cancelled or diverted); its headline is <b>out of sample</b> only: days before the model's
test window were used to train or select it, so their figures are marked <span class="in-sample">in-sample</span>
and never raise or silence an alert. <b>Drift</b> compares each month with the 42 days before it (PSI
per feature; thresholds = 1.5 x the largest month-to-month move seen in training, and each training month
is judged by thresholds fitted without it; calendar features excluded). Open offline; no network needed.</p>
{alarms_table(entries)}
<h2>Reports</h2>
<table id="reports"><thead><tr><th>period</th><th>report</th><th>sample</th><th>model version</th><th>headline</th><th>file</th></tr></thead>
<tbody>
{body}
</tbody></table>
</body></html>
"""
    index = reports_dir / "index.html"
    reports_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(index, page)
    return index
