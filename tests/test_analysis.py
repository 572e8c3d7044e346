"""Analyses read MLflow runs and compute thresholds, gaps and speedups."""

import pytest

from analysis.__main__ import main
from analysis.runs import load_runs
from analysis.tables import overfitting, sparsity_thresholds
from ticketbert.tracking import Tracker

CURVE = {0.0: 0.80, 0.1: 0.805, 0.2: 0.795, 0.3: 0.785, 0.4: 0.80, 0.5: 0.70}  # drops >1 pt at 0.3


def log_curve(uri, method="magnitude", seeds=(0, 1)):
    tracker = Tracker(uri, "analysis-test")
    for seed in seeds:
        for level, dev in CURVE.items():
            run = tracker.start(f"{method}-{level}-{seed}", tags={"task": "sst", "method": method, "criterion": "l1",
                                                                  "mode": "posthoc", "seed": seed, "sparsity": level})
            run.log_dict({"dev/overall": dev + 0.001 * seed, "train/overall": 0.95 - level / 10,
                          "achieved_sparsity": level, "speedup": 1 + level, "flops_per_token": 100 * (1 - level)}, 0)
            run.close()
    parent = tracker.start("sweep", tags={"mode": "sweep"})
    parent.close()


def test_threshold_is_the_last_level_before_the_first_drop(tmp_path):
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    log_curve(uri)
    runs = load_runs(["analysis-test"], uri)
    assert len(runs) == 12 and set(runs["seed"]) == {"0", "1"}
    row = sparsity_thresholds(runs, tolerance=0.01).iloc[0]
    assert row["dense"] == pytest.approx(0.8005)  # mean over seeds
    assert row["kept_sparsity"] == pytest.approx(0.2)  # 0.3 is 1.5 points down; 0.4's recovery does not count
    assert row["best_at"] == pytest.approx(0.1)
    gap = overfitting(runs).set_index("sparsity")["gap"]
    assert gap[0.5] == pytest.approx(0.90 - 0.7005)


def test_cli_writes_report_and_figures(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    log_curve(uri, seeds=(0,))
    assert main(["--experiment", "analysis-test", "--tracking-uri", uri, "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "sst_metric_vs_sparsity.png").stat().st_size > 10_000
    assert "kept_sparsity" in (tmp_path / "out" / "report.md").read_text()


def test_no_runs_is_a_clear_error(tmp_path):
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Tracker(uri, "empty")
    with pytest.raises(ValueError, match="no finished runs"):
        load_runs(["empty"], uri)
