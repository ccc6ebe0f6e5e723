"""The Python the README and docs/ show, run as written (twice: a block must survive a second run)
against a built lakehouse, from a folder where ``lakehouse/`` is that lakehouse."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from resources.core.settings import REPO_ROOT

# Blocks that say which Python runs them are the ones a reader copies and runs as they are.
PYTHON_BLOCK = re.compile(r"```python\n(# \.venv/bin/python[^\n]*\n.*?)```", re.S)
PYTHON_C = re.compile(r'\.venv/bin/python -c "\n(.*?)"\n', re.S)


def documented_blocks() -> list[tuple[str, str]]:
    blocks = []
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        found = PYTHON_BLOCK.findall(text) + [re.sub(r"(?m)^   ", "", b) for b in PYTHON_C.findall(text)]
        blocks += [(f"{path.name}[{i}]", code) for i, code in enumerate(found)]
    return blocks


def test_the_documented_blocks_are_found():
    names = [name for name, _ in documented_blocks()]
    assert "README.md[0]" in names and sum(n.startswith("analysts.md") for n in names) == 3


@pytest.mark.parametrize("name, code", documented_blocks(), ids=[n for n, _ in documented_blocks()])
def test_a_documented_block_runs_as_written_twice(ml_lakehouse, tmp_path, name, code):
    (tmp_path / "lakehouse").symlink_to(ml_lakehouse.settings.root)
    env = {
        **os.environ,
        "LAKEHOUSE_ROOT": str(ml_lakehouse.settings.root),
        "LAKEHOUSE_ENV": "dev",
        "PYTHONPATH": str(REPO_ROOT),
        "USER": "docs-reader",
    }
    for attempt in (1, 2):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{name}, run {attempt}:\n{code}\n{done.stderr[-2000:]}"
