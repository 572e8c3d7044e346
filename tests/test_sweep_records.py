"""The sweep's typed records: grid points, dense groups and trial results, through the final
summary, and grid points back to plain dicts where they are printed."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from ticketbert.sweep.checks import resolved_grid
from ticketbert.sweep.config import SweepConfig
from ticketbert.sweep.records import DenseGroup, GridPoint, TrialResult
from ticketbert.sweep.summary import print_summary, summarize, training_flops
from ticketbert.sweep.sweep import run_stages

POINTS = [GridPoint("sts", "magnitude", 0.5, 0, None, None), GridPoint("sts", "magnitude", 0.5, 1, None, None),
          GridPoint("sts", "wanda", 0.5, 0, "activation", "2:4"), GridPoint("sts", "none", 0.0, 0, None, None)]
DENSE = TrialResult("sts-dense-s0", {"dev/overall": 0.875, "train/overall": 1.0, "train_flops": 4e12},
                    model_dir="/runs/dense/model")
RESULTS = [TrialResult("sts-magnitude-0.5-s0", {"dev/overall": 0.75, "train/overall": 1.0, "achieved_sparsity": 0.5,
                                                "speedup": 1.25, "total_train_flops": 2e12}),
           TrialResult("sts-magnitude-0.5-s1", error="RuntimeError: out of memory"),
           TrialResult("sts-wanda-2of4-s0", {"dev/overall": 0.5, "train/overall": 0.75, "achieved_sparsity": 0.5,
                                             "scoring_flops": 1e12}),
           DENSE]


def test_points_name_their_method_and_group():
    assert POINTS[2].method_label == "wanda 2:4" and POINTS[0].method_label == "magnitude"
    assert POINTS[1].group == DenseGroup("sts", 1) and POINTS[1].group.name == "sts/s1"


def test_a_reported_trial_keeps_its_numbers_and_model_folder():
    result = TrialResult.reported("sts-dense-s0", {"dev/overall": np.float32(0.5), "done": 1.0, "run_dir": "/r",
                                                   "model_dir": "/r/model", "trial_id": "abc"})
    assert result == TrialResult("sts-dense-s0", {"dev/overall": 0.5, "done": 1.0}, model_dir="/r/model")
    assert result.ok and result.dev == 0.5
    failed = TrialResult("sts-dense-s0", error="missing")
    assert not failed.ok and failed.dev is None


def test_the_summary_of_typed_results_counts_the_failed_trial():
    assert summarize(POINTS, RESULTS) == [
        {"task": "sts", "method": "magnitude", "sparsity": 0.5, "seeds": "1/2", "best_dev": 0.75, "mean_dev": 0.75,
         "train_dev_gap": 0.25, "achieved": 0.5, "speedup": 1.25},
        {"task": "sts", "method": "wanda 2:4", "sparsity": 0.5, "seeds": "1/1", "best_dev": 0.5, "mean_dev": 0.5,
         "train_dev_gap": 0.25, "achieved": 0.5, "speedup": 1.0},
        {"task": "sts", "method": "none", "sparsity": 0.0, "seeds": "1/1", "best_dev": 0.875, "mean_dev": 0.875,
         "train_dev_gap": 0.125, "achieved": 0.0, "speedup": 1.0}]
    assert training_flops(POINTS, RESULTS, [DENSE]) == [("sts/s0", 7e12, 4e12)]


def test_the_printed_summary(capsys):
    print_summary(POINTS, RESULTS, [DENSE], "the bundled real-data sample", False, {"sts": "sts pearson"})
    assert capsys.readouterr().out.splitlines()[3:] == [
        "task  method     sparsity seeds  best dev  mean dev train-dev achieved speedup",
        "-" * 78,
        "sts   magnitude      0.50   1/2    0.7500    0.7500    0.2500    0.500    1.25",
        "sts   none           0.00   1/1    0.8750    0.8750    0.1250    0.000    1.00",
        "sts   wanda 2:4      0.50   1/1    0.5000    0.5000    0.2500    0.500    1.00",
        "failed trials (1): sts-magnitude-0.5-s1",
        "training FLOPs sts/s0: 7.000e+12 for 2 pruning trials + their dense fine-tune = 1.75x one dense fine-tune "
        "(4.000e+12)"]


def test_check_prints_grid_points_as_plain_fields():
    config = SweepConfig.model_validate({"grid": {"methods": ["wanda"], "sparsities": [0.3], "patterns": ["2:4"],
                                                  "tasks": ["sts"]}})
    trials = resolved_grid(config)["trials"]
    assert trials[1] == {"task": "sts", "method": "wanda", "sparsity": 0.5, "seed": 0, "criterion": None,
                         "pattern": "2:4"}
    assert list(trials[0]) == ["task", "method", "sparsity", "seed", "criterion", "pattern"]
    assert "pattern: '2:4'" in yaml.safe_dump(trials)


class FakeRunner:
    """Answers each stage as Tune would, without Ray: a dense fine-tune saves its model under its label."""

    def __init__(self, failing: str | None = None):
        self.failing, self.stages = failing, []

    def run_stage(self, stage, overrides, parent_run_id, search=False):
        self.stages.append((stage, overrides))
        labels = [o["name"].removeprefix("sweep-") for o in overrides]
        if stage == "dense":
            return [TrialResult(label, error="boom") if label == self.failing else
                    TrialResult(label, {"dev/overall": 0.875}, model_dir=f"/dense/{label}/model") for label in labels]
        return [TrialResult(label, {"dev/overall": 0.5}) for label in labels]


def test_post_hoc_stages_share_each_groups_dense_fine_tune():
    config = SweepConfig.model_validate({"grid": {"methods": ["none", "magnitude"], "seeds": [0, 1],
                                                  "tasks": ["sts"]}})
    runner, instance = FakeRunner(), SimpleNamespace(dense_dir=Path("/dense"), runs_dir=Path("/runs"))
    results, dense = run_stages(runner, config, config.trials(), instance, "parent")
    assert [r.label for r in dense] == ["sts-dense-s0", "sts-dense-s1"]
    assert [r.label for r in results] == ["sts-dense-s0", "sts-dense-s1", "sts-magnitude-0.5-s0", "sts-magnitude-0.5-s1"]
    assert [o["prune"]["dense_dir"] for o in runner.stages[1][1]] == ["/dense/sts-dense-s0", "/dense/sts-dense-s1"]
    with pytest.raises(RuntimeError, match="dense fine-tune sts-dense-s1 failed: boom"):
        run_stages(FakeRunner(failing="sts-dense-s1"), config, config.trials(), instance, "parent")
