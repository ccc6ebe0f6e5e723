"""Evidently reports side by side (resources/monitoring/report_jobs.py): real reports computed in
worker processes, stored as runs of a real Evidently workspace, and a re-run replacing them."""

import json
from datetime import date
from functools import partial

import numpy as np
import polars as pl
import psutil
import pytest

from resources.core.settings import Settings
from resources.monitoring.evidently_reports import quality_report
from resources.monitoring.report_jobs import ReportJob, ReportWriter, report_workers
from resources.monitoring.workspace import workspace_dir


def _job(settings: Settings, month: int, seed: int) -> ReportJob:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 2_000)
    frame = pl.DataFrame(
        {
            "flight_id": [f"f{i}" for i in range(2_000)],
            "is_late": y,
            "p_late": np.clip(0.3 * y + rng.random(2_000) * 0.7, 0, 1),
        }
    )
    period = f"2013-{month:02d}"
    build = partial(
        quality_report,
        frame,
        date(2013, month, 1),
        ["quality", "out_of_sample", f"period:{period}"],
        {"period": period},
    )
    return ReportJob(
        "quality",
        period,
        settings.reports_dir,
        build,
        {"seed": seed, "inputs_sha256": str(seed)},
        f'Quality {period}: it\'s "$(quoted)" `x`',
    )


def _stored_runs(settings: Settings) -> set[str]:
    return {p.stem for p in workspace_dir(settings).glob("*/snapshots/*.json")}


def test_reports_computed_in_workers_are_written_and_stored_once_each(tmp_path):
    settings = Settings(root=tmp_path / "lakehouse", env="dev").ensure()
    with ReportWriter(settings, workers=2) as writer:
        for month in (1, 2, 3):
            writer.submit(_job(settings, month, seed=month))
        assert writer.pool is not None  # from the second report on, workers compute them
        first = writer.finish()
    assert sorted(first) == [("quality", "2013-01"), ("quality", "2013-02"), ("quality", "2013-03")]
    for (_, period), result in first.items():
        page = (settings.reports_dir / result["html"]).read_text()
        assert "<title>Quality " + period in page and "&quot;$(quoted)&quot; `x`" in page
        assert result["html_path"].endswith(f"quality_{period}.html")
    runs = json.loads((workspace_dir(settings) / "runs.json").read_text())
    assert sorted(runs) == ["quality 2013-01", "quality 2013-02", "quality 2013-03"]
    assert set(runs.values()) == _stored_runs(settings)
    for name, run_id in runs.items():  # each run carries its report's name into the Evidently UI
        stored = next(workspace_dir(settings).glob(f"*/snapshots/{run_id}.json"))
        assert name in stored.read_text()

    # Again, with other data: each report's run is replaced, none is left behind.
    with ReportWriter(settings, workers=2) as writer:
        for month in (1, 2, 3):
            writer.submit(_job(settings, month, seed=10 + month))
        second = writer.finish()
    rerun = json.loads((workspace_dir(settings) / "runs.json").read_text())
    assert sorted(rerun) == sorted(runs) and not set(rerun.values()) & set(runs.values())
    assert set(rerun.values()) == _stored_runs(settings)
    assert second[("quality", "2013-02")]["seed"] == 12


def test_one_report_is_computed_in_process(tmp_path):
    settings = Settings(root=tmp_path / "lakehouse", env="dev").ensure()
    writer = ReportWriter(settings, workers=2)
    writer.submit(_job(settings, 5, seed=5))
    assert writer.pool is None
    assert writer.finish()[("quality", "2013-05")]["seed"] == 5
    assert len(_stored_runs(settings)) == 1


@pytest.mark.fast
def test_worker_count_comes_from_the_environment_and_the_reports():
    assert report_workers(12, {"LAKEHOUSE_REPORT_WORKERS": "3"}) == 3
    assert report_workers(2, {"LAKEHOUSE_REPORT_WORKERS": "3"}) == 2
    assert report_workers(0, {}) == 1
    assert 1 <= report_workers(None, {}) <= 4  # one per usable core, at most 4
    for bad in ("0", "-1", "two", "$(echo 2)"):
        with pytest.raises(ValueError, match="LAKEHOUSE_REPORT_WORKERS"):
            report_workers(4, {"LAKEHOUSE_REPORT_WORKERS": bad})


CHILD = """
import sys, time
from functools import partial
from pathlib import Path
from resources.core.settings import Settings
from resources.monitoring.report_jobs import ReportJob, ReportWriter

def main():
    settings = Settings(root=Path(sys.argv[1]), env="dev").ensure()
    writer = ReportWriter(settings, workers=2)
    for month in (1, 2, 3, 4):
        writer.submit(ReportJob("quality", f"2013-0{month}", settings.reports_dir, partial(time.sleep, 600), {}, "t"))
    while len(writer.pool._processes) < 2:
        time.sleep(0.1)
    print(" ".join(str(p) for p in writer.pool._processes), flush=True)
    time.sleep(600)

if __name__ == "__main__":
    main()
"""


def test_workers_end_when_the_run_is_killed(tmp_path):
    """kill -9 of the run: its report workers (busy with a report) do not live on."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "lakehouse")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    workers = [int(p) for p in child.stdout.readline().split()]
    assert len(workers) == 2 and all(psutil.pid_exists(p) for p in workers)
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if psutil.pid_exists(p)], "report workers outlived their run"
