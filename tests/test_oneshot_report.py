"""The one-shot results page: up to date with its results files, goals judged as stated."""

from __future__ import annotations

import pytest

from bench.oneshot_report import PAGE, goals, render


def test_the_page_matches_its_results_files():
    assert PAGE.read_text() == render(), "run python -m bench.oneshot_report"


def payload(task, dense, wanda_rows, kept, seconds=30.0, examples=512):
    rows = [{"sparsity": s, "pattern": p, "dev": d, "seconds": seconds} for s, p, d in wanda_rows]
    return {"task": task, "dense": dense, "calibration_examples": examples,
            "variants": {"wanda": {"rows": rows, "kept_within_1pt": kept},
                         "sparsegpt": {"rows": rows, "kept_within_1pt": kept},
                         "magnitude (global)": {"rows": [], "kept_within_1pt": 0.9}}}


@pytest.mark.parametrize("sts_24_dev,kept,seconds,expected", [
    (0.86, 0.5, 30.0, ["met", "met", "not measured", "not measured", "met"]),
    (0.85, 0.4, 61.0, ["not met", "not met", "not measured", "not measured", "not met"]),
])
def test_goal_verdicts(sts_24_dev, kept, seconds, expected):
    runs = [(f"{t}.json", payload(t, 0.875, [(0.5, None, 0.87), (0.5, "2:4", sts_24_dev)], kept, seconds))
            for t in ("sst", "para", "sts")]
    verdicts = [verdict for _, verdict in goals(runs)]
    assert [v.split(" (")[0] for v in verdicts] == expected


def test_missing_tasks_are_not_measured():
    verdicts = dict(goals([("sts.json", payload("sts", 0.875, [(0.5, "2:4", 0.87)], 0.5))]))
    assert verdicts["no retraining: within 1 point at >= 50% unstructured sparsity on SST, Quora and STS"] == \
        "not measured (sst, para missing)"
    assert verdicts["no retraining: 2:4 within 2 points on STS"] == "met"
