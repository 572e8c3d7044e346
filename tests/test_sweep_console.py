"""The sweep's console and command line: one progress line, grid-field hints, fast errors."""

import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from ticketbert.config import ConfigError
from ticketbert.training.checkpoint import MODEL_FILE, STATE_FILE, remove_checkpoints, save_checkpoint
from ticketbert.sweep.config import load_sweep_config
from ticketbert.sweep.progress import ProgressLine
from ticketbert.sweep.sweep import main

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FakeTrial:
    trial_id: str
    status: str = "PENDING"
    num_failures: int = 0
    error_file: str | None = None

    def __str__(self) -> str:
        return self.trial_id


def test_progress_line_prints_one_line_per_change():
    out = io.StringIO()
    reporter = ProgressLine("prune", stream=out)
    reporter.setup(start_time=1000.0, total_samples=4)
    trials = [FakeTrial(str(i)) for i in range(4)]
    assert reporter.line(trials, now=1000.0) == "[prune] 0/4 done, 0 running, 0 failed | 0:00 elapsed, ETA ?"
    trials[0].status = trials[1].status = "RUNNING"
    reporter.report(trials, done=False)
    assert not reporter.should_report(trials)  # nothing changed: nothing printed
    trials[0].status = "TERMINATED"
    assert reporter.should_report(trials)
    # one of four trials finished after 90 s: the other three take about 270 s more
    assert reporter.line(trials, now=1090.0) == "[prune] 1/4 done, 1 running, 0 failed | 1:30 elapsed, ETA 4:30"
    trials[1].num_failures, trials[1].status, trials[1].error_file = 1, "PENDING", "/x/error.txt"
    reporter.report(trials, done=False)
    trials[1].status = "ERROR"
    reporter.report(trials, done=True)
    lines = out.getvalue().splitlines()
    assert [line.split(" | ")[0] for line in lines] == [
        "[prune] 0/4 done, 2 running, 0 failed",
        "[prune] trial 1 failed (attempt 1): /x/error.txt",
        "[prune] 1/4 done, 0 running, 0 failed, 1 retried",
        "[prune] 1/4 done, 0 running, 1 failed, 1 retried"]


@pytest.mark.parametrize("override, hint", [
    ("sparsity=1.5", "sparsity is set by the grid for every trial: use grid.sparsities=[1.5]"),
    ("prune.sparsity=0.5", "prune.sparsity is set by the grid for every trial: use grid.sparsities=[0.5]"),
    ("method=heads", "use grid.methods=[heads]"),
    ("task=sts", "use grid.tasks=[sts]"),
    ("train.tasks=[sst,sts]", "train.tasks is set by the grid for every trial: use grid.tasks=[sst,sts]"),
    ("base.train.seed=3", "use grid.seeds=[3]"),
    ("prune.criterion=taylor", "use grid.criteria={<method>: taylor}"),
    ("prune.mode=imp", "use grid.mode=imp"),
    ("output_dir=/tmp/x", "output_dir is set by the sweep for every trial: use storage=/tmp/x"),
])
def test_grid_controlled_field_names_the_grid_field(override, hint, capsys):
    with pytest.raises(ConfigError, match=r"^override .*: " + hint.replace("[", r"\[").replace("{", r"\{")):
        load_sweep_config(ROOT / "configs" / "quickstart.yaml", [override])
    assert main([override]) == 2
    assert hint in capsys.readouterr().err


def test_grid_controlled_field_in_the_yaml_base(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("base:\n  prune:\n    sparsity: 0.4\n")
    with pytest.raises(ConfigError, match=rf"{path}: prune.sparsity is set by the grid .* grid.sparsities=\[0.4\]"):
        load_sweep_config(path)


@pytest.mark.parametrize("argument", ["sparsity=1.5", "grid.sparsities=[1.5]", "data.dir=/nonexistent",
                                      "resources.cpus_per_trial=100000", "--config=missing.yaml"])
def test_bad_argument_is_answered_before_any_heavy_import(argument):
    probe = ("import sys; from ticketbert.sweep.sweep import main; code = main([sys.argv[1]]); "
             "print(code, sorted(m for m in ('torch', 'transformers', 'ray', 'mlflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, argument], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["2", "[]"], done.stdout + done.stderr
    assert done.stderr.startswith("error: ")


def test_remove_checkpoints_keeps_the_final_model(tmp_path):
    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path / "run" / "checkpoint", model, {"epoch": 1})
    save_checkpoint(tmp_path / "run" / "round1", model, {"epoch": 2})
    (tmp_path / "run" / "model").mkdir()
    (tmp_path / "run" / "model" / MODEL_FILE).write_bytes(b"final")
    freed = remove_checkpoints(tmp_path / "run")
    assert freed > 0 and not list((tmp_path / "run").rglob(STATE_FILE))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["model"]
    assert remove_checkpoints(tmp_path / "missing") == 0


class FakeGrid(list):
    num_terminated = 2
    num_errors = 0


class FakeTuner:
    """fit() raises what Tune's controller raises after an OOM kill, ``failures`` times."""

    def __init__(self, failures: int, message: str = "Caught unexpected exception: 1 worker(s) were killed "
                 "due to the node running low on memory. Memory on the node ..."):
        self.failures, self.message, self.fits = failures, message, 0

    def fit(self) -> FakeGrid:
        self.fits += 1
        if self.fits <= self.failures:
            raise RuntimeError(self.message)
        return FakeGrid([1, 2])


def _runner(tmp_path, max_failures: int, tuner: FakeTuner):
    from ticketbert.sweep.instance import SweepInstance
    from ticketbert.sweep.resources import TrialResources
    from ticketbert.sweep.runner import SweepRunner

    config = load_sweep_config(ROOT / "configs" / "quickstart.yaml", [f"max_failures={max_failures}"])
    runner = SweepRunner(config, {}, TrialResources(cpu=1, gpu=0, max_concurrent=1),
                         SweepInstance("quickstart", tmp_path))
    restored = []
    runner._restore = lambda name: restored.append(name) or tuner
    return runner, restored


def test_a_trial_killed_for_memory_restores_the_experiment(tmp_path, capsys):
    tuner = FakeTuner(failures=2)
    runner, restored = _runner(tmp_path, 2, tuner)
    assert len(runner._fit("prune", tuner)) == 2
    assert restored == ["prune", "prune"] and tuner.fits == 3
    assert "[prune] Ray killed a trial's worker for lack of memory; restoring the experiment (attempt 3 of 3)" \
        in capsys.readouterr().out


def test_memory_kills_beyond_max_failures_and_other_errors_are_raised(tmp_path):
    tuner = FakeTuner(failures=2)
    runner, restored = _runner(tmp_path, 1, tuner)
    with pytest.raises(RuntimeError, match="running low on memory"):
        runner._fit("prune", tuner)
    assert restored == ["prune"]
    other = FakeTuner(failures=1, message="Caught unexpected exception: something else")
    runner, restored = _runner(tmp_path, 2, other)
    with pytest.raises(RuntimeError, match="something else"):
        runner._fit("prune", other)
    assert restored == []
