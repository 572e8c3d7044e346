"""Analyses on runs logged to a temporary MLflow store with known values: thresholds, bootstrap
intervals, the train-dev gap, the paired test, the Pareto front, early-bird and IMP tables,
and the report, figures and parent-run artifacts end to end; each checked against scipy called
directly or a hand computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from scipy import stats

from ticketbert.analysis import tables
from ticketbert.analysis.__main__ import main
from ticketbert.analysis.report import ARTIFACT_DIR, DESCRIPTION_TAG, TABLE_FILE, build, description, publish
from ticketbert.analysis.runs import load_runs, metric_history
from ticketbert.analysis.stats import bootstrap_mean_ci, holm, paired_improvement, pareto_front, tolerance_threshold

EXPERIMENT = "analysis-test"
DENSE = {0: 0.50, 1: 0.52, 2: 0.48}  # dev accuracy of each seed's dense fine-tune
DENSE_FLOPS = {0: 1.00e12, 1: 1.10e12, 2: 0.90e12}
# magnitude dev per seed at 20/40/60%; tolerance 0.01 keeps 40% (seed 0), 20% (seed 1: 0.505 < 0.51),
# 60% (seed 2: 0.47 is exactly dense - 0.01, which is within)
MAGNITUDE = {0: {0.2: 0.505, 0.4: 0.495, 0.6: 0.40}, 1: {0.2: 0.515, 0.4: 0.505, 0.6: 0.45},
             2: {0.2: 0.49, 0.4: 0.475, 0.6: 0.47}}
KEPT = {0: 0.4, 1: 0.2, 2: 0.6}
EARLY_BIRD = {0: 0.49, 1: 0.50, 2: 0.47}  # ffn 30%, 0.6 TFLOP in all
SCORING_FLOPS = 1e10  # logged by the first magnitude trial of each seed only (the others read the cache)
T0 = 1_700_000_000_000  # ms


def train_of(dev: float, level: float) -> float:
    return dev + 0.2 - 0.1 * level


class Store:
    """Writes runs the way ticketbert logs them, with controlled wall times."""

    def __init__(self, tmp_path, experiment: str = EXPERIMENT):
        self.uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        self.client = MlflowClient(self.uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(
            experiment, artifact_location=(tmp_path / "artifacts").as_uri())
        self.parent = self.run({"mode": "sweep"}, {}, seconds=1)

    def run(self, tags: dict, metrics: dict, *, seconds: float, params: dict | None = None,
            history: dict[str, list[tuple[int, float]]] | None = None, status: str = "FINISHED") -> str:
        tags = {**tags, "mlflow.parentRunId": self.parent} if tags.get("mode") != "sweep" else tags
        run = self.client.create_run(self.experiment_id, start_time=T0, tags={k: str(v) for k, v in tags.items()})
        run_id = run.info.run_id
        for key, value in (params or {}).items():
            self.client.log_param(run_id, key, value)
        batch = [Metric(k, float(v), T0, 0) for k, v in metrics.items()]
        for key, points in (history or {}).items():
            batch += [Metric(key, float(v), T0, step) for step, v in points]
        if batch:
            self.client.log_batch(run_id, metrics=batch)
        self.client.set_terminated(run_id, status, end_time=T0 + int(seconds * 1000))
        return run_id


def log_study(tmp_path, seeds=(0, 1, 2), synthetic: bool = False, skip: set[tuple[int, float]] = frozenset()) -> Store:
    """Dense + post-hoc magnitude at 0.2/0.4/0.6 + early-bird ffn 0.3, per seed (sst)."""
    store = Store(tmp_path)
    for seed in seeds:
        common = {"task": "sst", "seed": seed, "synthetic_data": synthetic}
        store.run({**common, "mode": "dense", "method": "none", "criterion": "", "sparsity": 0.0},
                  {"dev/overall": DENSE[seed], "train/overall": train_of(DENSE[seed], 0), "train_flops": DENSE_FLOPS[seed]},
                  seconds=60)
        for i, (level, dev) in enumerate(MAGNITUDE[seed].items()):
            if (seed, level) in skip:
                continue
            store.run({**common, "mode": "posthoc", "method": "magnitude", "criterion": "l1", "sparsity": level},
                      {"dev/overall": dev, "train/overall": train_of(dev, level), "achieved_sparsity": level,
                       "flops_speedup": 1 / (1 - level), "speedup": 1.0 + level / 10,
                       "scoring_flops": SCORING_FLOPS if i == 0 else 0.0},
                      seconds=10, params={"prune.recovery_epochs": 0})
        store.run({**common, "mode": "early_bird", "method": "ffn", "criterion": "taylor", "sparsity": 0.3},
                  {"dev/overall": EARLY_BIRD[seed], "train/overall": 0.6, "achieved_sparsity": 0.3,
                   "flops_speedup": 1.4, "speedup": 1.3, "total_train_flops": 0.6e12, "early_bird_step": 40.0,
                   "early_bird_converged": 1.0, "search_train_flops": 0.1e12, "search_scoring_flops": 0.02e12},
                  seconds=45, params={"prune.early_bird_epsilon": 0.1},
                  history={"early_bird/mask_distance": [(20, 0.5), (30, 0.08), (40, 0.05)]})
    store.run({"task": "sst", "mode": "posthoc", "method": "magnitude", "criterion": "l1", "sparsity": 0.2, "seed": 0},
              {"dev/overall": 0.99}, seconds=1, status="FAILED")  # a failed trial is ignored
    return store


def curves_of(store: Store):
    return tables.curves(load_runs([EXPERIMENT], store.uri))


def magnitude(table):
    return table[table["approach"] == "post-hoc magnitude (l1)"]


# -- statistics against scipy and hand computations -----------------------------------------------------

def test_thresholds_per_seed_with_bootstrap_interval(tmp_path):
    row = magnitude(tables.thresholds(curves_of(log_study(tmp_path)), 0.01)).iloc[0]
    assert row["seeds"] == 3 and row["metric"] == "SST accuracy"
    assert row["dense_mean"] == pytest.approx(0.50) and row["dense_median"] == pytest.approx(0.50)
    assert row["dense_std"] == pytest.approx(0.02)  # sample std of 0.50, 0.52, 0.48
    assert row["kept_per_seed"] == pytest.approx([KEPT[0], KEPT[1], KEPT[2]])
    assert row["flops_reduction_per_seed"] == pytest.approx([KEPT[0], KEPT[1], KEPT[2]])  # 1 - 1/(1/(1-s)) = s
    assert row["kept_mean"] == pytest.approx(0.4)
    direct = stats.bootstrap((np.array([0.4, 0.2, 0.6]),), np.mean, n_resamples=9999, method="percentile",
                             rng=np.random.default_rng(0)).confidence_interval
    assert (row["kept_ci_low"], row["kept_ci_high"]) == pytest.approx((direct.low, direct.high))
    assert 0.2 <= row["kept_ci_low"] < 0.4 < row["kept_ci_high"] <= 0.6


def test_bootstrap_interval_equals_resampled_percentiles():
    values = np.array([0.2, 0.4, 0.6])
    rng = np.random.default_rng(0)  # what scipy's percentile bootstrap does, by hand
    means = values[rng.integers(0, 3, size=(9999, 3))].mean(axis=1)
    ci = bootstrap_mean_ci(values)
    assert (ci.low, ci.high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=1e-12)
    assert "coarse" in ci.note


def test_one_seed_gives_no_interval_and_says_so(tmp_path):
    store = log_study(tmp_path, seeds=(0,))
    row = magnitude(tables.thresholds(curves_of(store), 0.01)).iloc[0]
    assert row["kept_mean"] == pytest.approx(0.4) and row["kept_ci_low"] is None and row["kept_ci_high"] is None
    assert "1 seed: no interval" in row["note"]
    test = tables.improvement_tests(curves_of(store)).iloc[0]
    assert test["p_one_sided"] is None and test["verdict"].startswith("not tested: 1 paired seed")
    assert not bootstrap_mean_ci([0.3]).exists
    report = build(load_runs([EXPERIMENT], store.uri), [EXPERIMENT], tmp_path / "out", 0.01, store.uri)
    assert "Only one seed for SST accuracy" in report.markdown and "no interval" in report.markdown


def test_missing_level_stops_the_threshold_and_is_named(tmp_path):
    store = log_study(tmp_path, skip={(2, 0.4)})  # seed 2 would otherwise keep 60%
    row = magnitude(tables.thresholds(curves_of(store), 0.01)).iloc[0]
    assert row["kept_per_seed"] == pytest.approx([0.4, 0.2, 0.2])
    assert "seed 2: level 0.4 missing: stopped there" in row["note"]
    assert tolerance_threshold([0.2], [0.2], [0.9], [0.2], 1.0, 0.01).sparsity == 0.0  # first level already drops


def test_train_dev_gap_per_level_with_spread(tmp_path):
    gap = magnitude(tables.overfitting(curves_of(log_study(tmp_path)))).set_index("sparsity")
    expected = [train_of(MAGNITUDE[s][0.6], 0.6) - MAGNITUDE[s][0.6] for s in (0, 1, 2)]  # 0.14 each
    assert gap.loc[0.6, "gap_mean"] == pytest.approx(np.mean(expected))
    assert gap.loc[0.6, "gap_std"] == pytest.approx(0.0, abs=1e-12)
    assert gap.loc[0.0, "gap_mean"] == pytest.approx(0.2) and gap.loc[0.0, "seeds"] == 3
    assert gap.loc[0.2, "dev_std"] == pytest.approx(np.std([0.505, 0.515, 0.49], ddof=1))


def test_paired_test_matches_scipy_and_hand_effect_size(tmp_path):
    tests = magnitude(tables.improvement_tests(curves_of(log_study(tmp_path)))).set_index("sparsity")
    pruned, dense = [MAGNITUDE[s][0.2] for s in (0, 1, 2)], [DENSE[s] for s in (0, 1, 2)]
    diff = np.subtract(pruned, dense)  # +0.005, -0.005, +0.010
    t_hand = diff.mean() / (diff.std(ddof=1) / np.sqrt(3))
    row = tests.loc[0.2]
    assert row["t"] == pytest.approx(t_hand)
    assert row["p_one_sided"] == pytest.approx(stats.ttest_rel(pruned, dense, alternative="greater").pvalue)
    assert row["p_one_sided"] == pytest.approx(stats.t.sf(t_hand, df=2))
    assert row["cohen_dz"] == pytest.approx(diff.mean() / diff.std(ddof=1))
    assert row["mean_diff"] == pytest.approx(diff.mean())
    raw = tests["p_one_sided"].tolist()  # Holm over the three levels, by hand
    order = np.argsort(raw)
    hand = np.maximum.accumulate([min(1.0, (3 - k) * raw[i]) for k, i in enumerate(order)])
    assert [tests["p_holm"].tolist()[i] for i in order] == pytest.approx(hand)
    assert "d_z" in row["verdict"] and "Holm p" in row["verdict"] and row["verdict"] != "yes"


def test_paired_test_edge_cases():
    same = paired_improvement([0.6, 0.7], [0.5, 0.6])
    assert same.p_value is None and "undefined" in same.note
    strong = paired_improvement([0.61, 0.72, 0.55, 0.8], [0.5, 0.6, 0.45, 0.7])
    assert strong.p_value < 0.05 and strong.effect_size > 1
    assert holm([0.01, None, 0.04]) == [pytest.approx(0.02), None, pytest.approx(0.04)]


def test_pareto_front_of_training_cost(tmp_path):
    cost = tables.cost(load_runs([EXPERIMENT], log_study(tmp_path).uri)).set_index(["approach", "sparsity"])
    dense_flops = np.mean(list(DENSE_FLOPS.values()))
    assert cost.loc[("dense", 0.0), "train_flops"] == pytest.approx(dense_flops)
    # post-hoc = its dense fine-tune + the scoring logged once per seed, at every level
    assert cost.loc[("post-hoc magnitude (l1)", 0.4), "train_flops"] == pytest.approx(dense_flops + SCORING_FLOPS)
    assert cost.loc[("early-bird ffn (taylor)", 0.3), "train_flops"] == pytest.approx(0.6e12)
    assert cost.loc[("post-hoc magnitude (l1)", 0.2), "wall_seconds"] == pytest.approx(70.0)  # dense 60 s + 10 s
    # by hand: early-bird is cheapest (0.487); dense (0.500) beats it for more; magnitude 20% (0.5033) is best
    front = {k for k, on in cost["pareto_flops"].items() if on}
    assert front == {("early-bird ffn (taylor)", 0.3), ("dense", 0.0), ("post-hoc magnitude (l1)", 0.2)}
    assert pareto_front([1, 1, 2, 3], [0.5, 0.4, 0.5, 0.6]) == [True, False, False, True]


def test_deployment_front_of_dev_against_model_flops_and_speedup(tmp_path):
    table = tables.deployment(tables.curves(load_runs([EXPERIMENT], log_study(tmp_path).uri)))
    table = table.set_index(["approach", "sparsity"])
    assert table.loc[("dense", 0.0), "seeds"] == 3 and table.loc[("dense", 0.0), "flops_share"] == pytest.approx(1.0)
    assert table.loc[("post-hoc magnitude (l1)", 0.4), "flops_share"] == pytest.approx(0.6)  # 1 / flops_speedup
    assert table.loc[("early-bird ffn (taylor)", 0.3), "speedup_mean"] == pytest.approx(1.3)
    # by hand: magnitude 20% (0.80 of the FLOPs, dev 0.503) beats dense on both; magnitude 40% (0.60, 0.492)
    # beats early-bird (0.71, 0.487) on FLOPs, but early-bird is the fastest (1.30x) and beats magnitude 60%
    front_flops = {k for k, on in table["front_flops"].items() if on}
    front_speedup = {k for k, on in table["front_speedup"].items() if on}
    magnitude = "post-hoc magnitude (l1)"
    assert front_flops == {(magnitude, 0.2), (magnitude, 0.4), (magnitude, 0.6)}
    assert front_speedup == {(magnitude, 0.2), (magnitude, 0.4), ("early-bird ffn (taylor)", 0.3)}


def test_speedup_is_per_task_never_pooled(tmp_path):
    store = log_study(tmp_path)
    store.run({"task": "sts", "mode": "posthoc", "method": "magnitude", "criterion": "l1", "sparsity": 0.2,
               "seed": 0}, {"dev/overall": 0.8, "achieved_sparsity": 0.2, "flops_speedup": 1.25, "speedup": 3.0},
              seconds=5)
    table = tables.speedups(curves_of(store)).set_index(["task", "approach", "sparsity"])
    assert table.loc[("sst", "post-hoc magnitude (l1)", 0.2), "speedup_mean"] == pytest.approx(1.02)
    assert table.loc[("sts", "post-hoc magnitude (l1)", 0.2), "speedup_mean"] == pytest.approx(3.0)


def test_early_bird_phases_and_imp_rounds(tmp_path):
    store = log_study(tmp_path, seeds=(0,))
    early = tables.early_bird(load_runs([EXPERIMENT], store.uri))
    assert early.loc[0, "early_bird_step"] == 40 and early.loc[0, "search_seconds"] != early.loc[0, "search_seconds"]
    store.run({"task": "sts", "mode": "imp", "method": "magnitude", "criterion": "", "sparsity": 0.6, "seed": 0},
              {"dev/overall": 0.85, "achieved_sparsity": 0.6, "total_train_flops": 3e12}, seconds=30,
              params={"prune.imp_rounds": 2, "train.epochs": 3},
              history={"dev/overall": [(3, 0.87), (6, 0.86), (9, 0.85)]})
    runs = load_runs([EXPERIMENT], store.uri)
    rounds = tables.imp_rounds(runs, metric_history(store.uri, runs.loc[runs["mode"] == "imp", "run_id"].tolist(),
                                                    "dev/overall"))
    assert rounds["target_sparsity"].tolist() == pytest.approx([0.0, 1 - 0.4 ** 0.5, 0.6])
    assert rounds["dev"].tolist() == pytest.approx([0.87, 0.86, 0.85])
    assert rounds["epochs_so_far"].tolist() == [3, 6, 9]


def test_searched_dense_runs_keep_the_best_as_reference(tmp_path):
    store = log_study(tmp_path, seeds=(0,))
    store.run({"task": "sst", "mode": "dense", "method": "none", "sparsity": 0.0, "seed": 0},
              {"dev/overall": 0.30, "train_flops": 5e12}, seconds=60)  # a worse learning rate of the search
    row = magnitude(tables.thresholds(curves_of(store), 0.01)).iloc[0]
    assert row["dense_mean"] == pytest.approx(DENSE[0])


# -- report, figures and MLflow end to end ---------------------------------------------------------------

def test_cli_writes_report_and_figures(tmp_path, capsys):
    store = log_study(tmp_path)
    out = tmp_path / "out"
    assert main(["--experiment", EXPERIMENT, "--tracking-uri", store.uri, "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    for name in ("sst_metric_vs_sparsity.png", "speedup_vs_flops.png", "sst_deployment.png",
                 "sst_early_bird_mask_distance.png"):
        assert (out / name).stat().st_size > 10_000 and f"({name})" in text
    assert "| SST accuracy | post-hoc magnitude (l1) | 3 | 0.500 ± 0.020 (median 0.500) | 40%, 20%, 60% | 40% |" in text
    assert "| SST accuracy | early-bird ffn (taylor) | 30% | 0 | 40 | yes |" in text  # integers as integers
    assert "nothing is averaged across tasks" in text and "SYNTHETIC" not in text
    assert "improves over dense" not in text and "no significant improvement" in text
    provenance = json.loads((out / "provenance.json").read_text())["provenance"]
    assert provenance["command"].startswith("python ") and provenance["data"]["source"] == "mlflow runs"
    assert len(provenance["data"]["files"]) == len(load_runs([EXPERIMENT], store.uri))  # every run read, named


def test_synthetic_runs_are_marked(tmp_path):
    store = log_study(tmp_path, seeds=(0, 1), synthetic=True)
    report = build(load_runs([EXPERIMENT], store.uri), [EXPERIMENT], tmp_path / "out", 0.01, store.uri)
    assert "SYNTHETIC DATA" in report.markdown


def test_cli_errors_are_one_line(tmp_path, capsys):
    store = Store(tmp_path, "empty")
    assert main(["--experiment", "empty", "--tracking-uri", store.uri, "--out", str(tmp_path / "o")]) == 2
    assert "no finished runs with a task tag" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--experiment", "empty", "--tolerance", "2"])


def test_publish_logs_the_answer_to_the_parent_run(tmp_path):
    store = log_study(tmp_path)
    Store(tmp_path).run({"task": "sst", "mode": "dense", "method": "none", "sparsity": 0.0, "seed": 0},
                        {"dev/overall": 0.1}, seconds=1)  # a run of another sweep (parent) in the same experiment
    report = publish(store.uri, EXPERIMENT, store.parent, tmp_path / "published")
    assert report is not None
    artifacts = {f.path for f in store.client.list_artifacts(store.parent, ARTIFACT_DIR)}
    assert {f"{ARTIFACT_DIR}/report.md", f"{ARTIFACT_DIR}/sst_metric_vs_sparsity.png", TABLE_FILE} <= artifacts
    local = store.client.download_artifacts(store.parent, TABLE_FILE, str(tmp_path / "dl"))
    table = json.loads(open(local).read())
    assert "dev_mean" in table["columns"] and len(table["data"]) == len(report.results)
    publish(store.uri, EXPERIMENT, store.parent, tmp_path / "published")  # a rerun replaces, not appends
    local = store.client.download_artifacts(store.parent, TABLE_FILE, str(tmp_path / "dl2"))
    assert json.loads(open(local).read()) == table
    note = store.client.get_run(store.parent).data.tags[DESCRIPTION_TAG]
    assert note.startswith("# Analysis of analysis-test") and "40%, 20%, 60%" in note
    assert "0.500 ± 0.020" in note  # the other sweep's dense run (0.1) was left out
    assert len(description("x\n" * 9000)) <= 8000
    metrics = store.client.get_run(store.parent).data.metrics
    assert metrics["kept_sparsity/sst/post-hoc-magnitude-l1"] == pytest.approx(0.4)
    assert metrics["kept_sparsity/sst/post-hoc-magnitude-l1_ci_low"] == pytest.approx(row_ci_low(store))
    assert metrics["dense_dev/sst"] == pytest.approx(0.5)


def row_ci_low(store: Store) -> float:
    return magnitude(tables.thresholds(curves_of(store), 0.01)).iloc[0]["kept_ci_low"]


def test_publish_without_trials_says_so(tmp_path, capsys):
    store = Store(tmp_path)
    assert publish(store.uri, EXPERIMENT, store.parent, tmp_path / "out") is None
    assert "nothing to report" in capsys.readouterr().out
