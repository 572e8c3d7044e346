"""The "bring your own task" guide's example, run as written: its files written where their
titles say, its shell block run in that folder (the bundled MiniLM, Ray, MLflow, analysis)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guides" / "your-own-task.md"
BLOCK = re.compile(r"```(\w+)(?: title=\"([^\"]+)\")?\n(.*?)```", re.S)


def guide_blocks() -> tuple[dict[str, str], list[str]]:
    """The guide's titled blocks (path -> text) and its bash blocks, in order."""
    files, shell = {}, []
    for language, title, body in BLOCK.findall(GUIDE.read_text()):
        if title:
            files[title] = body
        elif language == "bash":
            shell.append(body)
    return files, shell


@pytest.mark.ray
def test_the_guide_example_runs_as_written(tmp_path):
    files, shell = guide_blocks()
    assert set(files) == {"tickets/train.csv", "tickets/dev.csv", "tickets/tickets.yaml"} and len(shell) == 1
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env.update(PYTHONPATH=str(ROOT), PATH=f"{Path(sys.executable).parent}:{env['PATH']}", TQDM_DISABLE="1",
               HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", "-ec", shell[0]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "best dev metric (dev/overall: tickets accuracy)" in done.stdout
    assert "tickets: " in done.stdout.splitlines()[0]  # the sweep says where the task's rows are
    report = (tmp_path / "tickets" / "report" / "report.md").read_text()
    assert "tickets accuracy" in report
