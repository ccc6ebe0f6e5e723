"""dbt unit tests of the clock rules (2400, overnight arrivals, DST): they run without a built
warehouse or raw files, and they fail when a rule is broken."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resources.core.settings import DBT_PROJECT_DIR, Settings

pytestmark = pytest.mark.fast


def run_unit_tests(project: Path, root: Path, target: Path) -> subprocess.CompletedProcess:
    settings = Settings(root=root).ensure()
    env = {**os.environ, **settings.dbt_env(), "DO_NOT_TRACK": "1"}
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "test",
            "--select",
            "test_type:unit",
            "--profiles-dir",
            str(project),
            "--project-dir",
            str(project),
            "--target-path",
            str(target),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=project,
    )


def test_the_clock_rules_hold(tmp_path):
    done = run_unit_tests(DBT_PROJECT_DIR, tmp_path / "lakehouse", tmp_path / "target")
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"Done\. PASS=(\d+)", done.stdout).group(1) == "4"
    for name in (
        "2400_is_midnight_ending_the_day",
        "overnight_arrival_lands_the_next_day",
        "dst_duplicate_hour_keeps_the_daylight_reading",
        "local_times_become_utc",
    ):
        assert name in done.stdout


def test_dropping_the_overnight_rule_fails_its_unit_test(tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    # The rule lives in the timetable macro the flights and the schedules share.
    model = project / "macros" / "nycflights_schedule.sql"
    text = model.read_text()
    assert "then 1440 else 0 end" in text
    model.write_text(text.replace("then 1440 else 0 end", "then 0 else 0 end"))
    done = run_unit_tests(project, tmp_path / "lakehouse", tmp_path / "target")
    assert done.returncode != 0
    assert re.search(
        r"FAIL \d+ stg_nycflights__flights::stg_flights__overnight_arrival_lands_the_next_day|"
        r"Failure in unit_test stg_flights__overnight_arrival_lands_the_next_day",
        done.stdout,
    )
    assert "stg_flights__2400_is_midnight_ending_the_day" in done.stdout  # the others still ran
