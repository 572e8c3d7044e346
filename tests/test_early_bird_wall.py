"""bench.early_bird_wall: its trials are the run configs the sweep gives them (no training here)."""

from pathlib import Path

import pytest

from bench.early_bird_wall import main, trial_configs
from ticketbert.config import ConfigError
from ticketbert.sweep.config import load_sweep_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "early_bird_wall.yaml"


def test_trials_are_the_sweeps_run_configs_with_tracking_off(tmp_path):
    config = load_sweep_config(CONFIG, ["grid.tasks=[sst]"])
    trials = trial_configs(config, "cpu", tmp_path)
    assert [(point.method, point.sparsity) for point, _ in trials] == [("none", 0.0), ("ffn", 0.4)]
    dense, early = (run for _, run in trials)
    assert dense.prune.method == "none" and dense.name == "early-bird-wall-sst-none-0-s0"
    assert (early.prune.method, early.prune.mode, early.prune.criterion) == ("ffn", "early_bird", "taylor")
    for run in (dense, early):  # the sweep's base and the grid point
        assert run.train.tasks == ["sst"] and run.train.epochs == 3 and run.train.lr == 4e-5
        assert run.data.max_length == 96 and run.model.dropout == 0.1 and run.train.seed == 0
        assert not run.tracking.enabled and not run.train.progress and run.train.device == "cpu"
        assert run.output_dir == tmp_path


def test_a_posthoc_grid_with_pruned_points_is_refused(tmp_path):
    config = load_sweep_config(ROOT / "configs" / "quickstart.yaml")
    with pytest.raises(ConfigError, match="post-hoc"):
        trial_configs(config, "cpu", tmp_path)


def test_check_prints_the_trials_and_runs_nothing(capsys):
    assert main(["--check", "--config", str(CONFIG), "--device", "cpu", "grid.tasks=[sst]"]) == 0
    out = capsys.readouterr().out
    assert "2 trials of early-bird-wall: checked; nothing run" in out
    assert "early-bird-wall-sst-ffn-0.4-s0" in out and "enabled: false" in out


def test_parallel_below_one_is_an_error(capsys):
    assert main(["--check", "--parallel", "0"]) != 0
    assert "--parallel must be at least 1" in capsys.readouterr().err
