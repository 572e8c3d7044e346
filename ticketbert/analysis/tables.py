"""The analyses as tables (numbers; ``analysis.report`` formats them): per-seed curves, thresholds
with bootstrap intervals, overfitting with spread, the paired improvement test, inference speedup
against FLOP count, training cost with its Pareto front, early-bird searches and IMP rounds.

Everything is per task: nothing here averages over tasks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ticketbert.analysis.labels import metric_name, with_approach
from ticketbert.analysis.runs import PRIMARY, TRAIN_PRIMARY
from ticketbert.analysis.stats import bootstrap_mean_ci, holm, paired_improvement, pareto_front, summarize, tolerance_threshold

KEY = ["task", "approach"]
ALPHA = 0.05


def _optional(runs: pd.DataFrame, column: str) -> pd.Series:
    return runs[column] if column in runs else pd.Series(np.nan, index=runs.index, dtype=float)


def drop_searched_dense(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with one dense run per experiment x task x seed: where a search tried several (the
    sweep's Optuna stage), the one with the best dev metric, which the pruning trials started from."""
    dense = runs[runs["mode"] == "dense"].sort_values(PRIMARY, ascending=False)
    extra = dense[dense.duplicated(["experiment_id", "task", "seed"])].index
    return runs.drop(index=extra)


def run_costs(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (one dense run per task x seed, see ``drop_searched_dense``) with ``cost_flops`` (training + scoring FLOPs it took to get this model) and
    ``cost_seconds`` (wall time of its runs). A post-hoc model costs its dense fine-tune, the
    importance scoring of its (method, criterion) (logged once, by the trial that scored; shared by
    every level) and any recovery epochs; early-bird and IMP log ``total_train_flops``."""
    runs = drop_searched_dense(runs)
    runs["train_flops"] = _optional(runs, "train_flops")
    dense = runs[runs["mode"] == "dense"].set_index(["experiment_id", "task", "seed"])
    key = list(zip(runs["experiment_id"], runs["task"], runs["seed"]))
    dense_flops = pd.Series([dense["train_flops"].get(k, np.nan) for k in key], index=runs.index)
    dense_seconds = pd.Series([dense["wall_seconds"].get(k, np.nan) for k in key], index=runs.index)
    scoring = _optional(runs, "scoring_flops").fillna(0.0).groupby(
        [runs["experiment_id"], runs["task"], runs["seed"], runs["method"], runs["criterion"]]).transform("max")
    recovery = _optional(runs, "recovery_train_flops").fillna(0.0)
    posthoc = runs["mode"] == "posthoc"
    total = _optional(runs, "total_train_flops")
    runs["cost_flops"] = np.where(runs["mode"] == "dense", runs["train_flops"],
                                  np.where(posthoc, dense_flops + scoring + recovery, total))
    runs["cost_seconds"] = np.where(posthoc, dense_seconds + runs["wall_seconds"], runs["wall_seconds"])
    return runs


def curves(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per task x approach x seed x sparsity level (the pruned runs), where an approach
    without its own level-0 run gets its seed's dense run (same experiment) as level 0.

    Columns: task, approach, mode, seed, sparsity, achieved_sparsity, dev, train, gap (train - dev),
    flops_reduction (1 - FLOPs/token pruned / dense), flops_speedup, speedup, synthetic,
    cost_flops, cost_seconds, run_id, experiment_id.
    """
    runs = run_costs(with_approach(runs))
    runs["dev"] = runs[PRIMARY]
    runs["train"] = _optional(runs, TRAIN_PRIMARY)
    runs["gap"] = runs["train"] - runs["dev"]
    flops_speedup = _optional(runs, "flops_speedup")
    runs["flops_speedup"] = np.where(runs["mode"] == "dense", 1.0, flops_speedup)
    runs["flops_reduction"] = 1.0 - 1.0 / runs["flops_speedup"]
    runs["speedup"] = np.where(runs["mode"] == "dense", 1.0, _optional(runs, "speedup"))
    columns = ["task", "approach", "mode", "seed", "sparsity", "achieved_sparsity", "dev", "train", "gap", "flops_reduction",
               "flops_speedup", "speedup", "synthetic", "cost_flops", "cost_seconds", "run_id", "experiment_id"]
    pruned = runs.loc[runs["approach"] != "dense", columns]
    dense = runs.loc[runs["approach"] == "dense", columns]
    added = []
    for (experiment, task, approach), group in pruned.groupby(["experiment_id", "task", "approach"]):
        have = set(group.loc[group["sparsity"] == 0.0, "seed"])
        base = dense[(dense["experiment_id"] == experiment) & (dense["task"] == task) & ~dense["seed"].isin(have)
                     & dense["seed"].isin(set(group["seed"]))]
        added.append(base.assign(approach=approach))
    return pd.concat([pruned, *added], ignore_index=True).sort_values(KEY + ["sparsity", "seed"], ignore_index=True)


def levels(curve_rows: pd.DataFrame) -> pd.DataFrame:
    """Per task x approach x level: seeds, and mean/std/min/max over seeds of dev, train and gap;
    means of achieved sparsity, FLOPs reduction and speedups."""
    grouped = curve_rows.groupby(KEY + ["sparsity"])
    table = grouped.agg(seeds=("seed", "nunique"), achieved_sparsity=("achieved_sparsity", "mean"),
                        dev_mean=("dev", "mean"), dev_std=("dev", "std"), dev_min=("dev", "min"), dev_max=("dev", "max"),
                        train_mean=("train", "mean"), train_std=("train", "std"), train_min=("train", "min"),
                        train_max=("train", "max"), gap_mean=("gap", "mean"), gap_std=("gap", "std"),
                        gap_min=("gap", "min"), gap_max=("gap", "max"),
                        flops_reduction=("flops_reduction", "mean"), flops_speedup=("flops_speedup", "mean"),
                        speedup_mean=("speedup", "mean"), speedup_std=("speedup", "std"))
    return table.reset_index()


def _dense_by_seed(group: pd.DataFrame) -> pd.Series:
    return group[group["sparsity"] == 0.0].drop_duplicates("seed").set_index("seed")["dev"]


def thresholds(curve_rows: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per task x approach: the dense dev metric over seeds (mean, std, median) and, per seed, the
    largest sparsity (and FLOPs reduction) at which dev, at that and every lower level, stays
    within ``tolerance`` (absolute; 0.01 = 1 point) of that seed's dense model; their mean with a
    bootstrap interval over seeds."""
    rows = []
    for (task, approach), group in curve_rows.groupby(KEY):
        dense = _dense_by_seed(group)
        expected = sorted(group["sparsity"].unique())
        notes = [f"seed {s}: no dense run, left out" for s in sorted(set(group["seed"]) - set(dense.index))]
        kept, reduction = {}, {}
        for seed, runs in group[group["seed"].isin(dense.index)].groupby("seed"):
            found = tolerance_threshold(runs["sparsity"].tolist(), runs["achieved_sparsity"].tolist(),
                                        runs["dev"].tolist(), runs["flops_reduction"].tolist(), float(dense[seed]),
                                        tolerance, expected)
            kept[seed], reduction[seed] = found.sparsity, found.flops_reduction
            if found.note:
                notes.append(f"seed {seed}: {found.note}")
        if not kept:
            rows.append({"task": task, "metric": metric_name(task), "approach": approach, "seeds": 0,
                         "note": "; ".join(notes) or "no dense reference"})
            continue
        seeds = sorted(kept)
        summary = summarize(dense[seeds].tolist())
        sparsity_ci = bootstrap_mean_ci([kept[s] for s in seeds])
        flops_ci = bootstrap_mean_ci([reduction[s] for s in seeds])
        if not sparsity_ci.exists:
            notes.append(sparsity_ci.note)
        rows.append({
            "task": task, "metric": metric_name(task), "approach": approach, "seeds": len(seeds),
            "dense_mean": summary.mean, "dense_std": summary.std, "dense_median": summary.median,
            "kept_per_seed": [kept[s] for s in seeds], "kept_mean": float(np.mean([kept[s] for s in seeds])),
            "kept_ci_low": sparsity_ci.low, "kept_ci_high": sparsity_ci.high,
            "flops_reduction_per_seed": [reduction[s] for s in seeds],
            "flops_reduction_mean": float(np.mean([reduction[s] for s in seeds])),
            "flops_ci_low": flops_ci.low, "flops_ci_high": flops_ci.high,
            "max_tested": float(group["achieved_sparsity"].max()), "note": "; ".join(notes),
        })
    return pd.DataFrame(rows)


def overfitting(curve_rows: pd.DataFrame) -> pd.DataFrame:
    """Train-subsample minus dev metric per task x approach x level, with its spread over seeds."""
    table = levels(curve_rows)
    table.insert(1, "metric", table["task"].map(metric_name))
    return table[["task", "metric", "approach", "sparsity", "achieved_sparsity", "seeds", "dev_mean", "dev_std",
                  "train_mean", "gap_mean", "gap_std", "gap_min", "gap_max"]]


def improvement_tests(curve_rows: pd.DataFrame) -> pd.DataFrame:
    """Per task x approach x level > 0: the one-sided paired test over seeds of 'pruning at this
    level improves dev over dense', with Cohen's d_z and Holm's correction over the levels of the
    task x approach. ``verdict`` always carries the numbers; there is no bare yes."""
    rows = []
    for (task, approach), group in curve_rows.groupby(KEY):
        dense = _dense_by_seed(group)
        block = []
        for level, runs in group[group["sparsity"] > 0].groupby("sparsity"):
            runs = runs[runs["seed"].isin(dense.index)].drop_duplicates("seed")
            test = paired_improvement(runs["dev"].tolist(), dense[runs["seed"]].tolist())
            block.append({"task": task, "metric": metric_name(task), "approach": approach, "sparsity": level,
                          "seeds": test.n, "dense_mean": float(dense[runs["seed"]].mean()) if test.n else np.nan,
                          "pruned_mean": float(runs["dev"].mean()) if test.n else np.nan,
                          "mean_diff": test.mean_diff, "t": test.statistic, "p_one_sided": test.p_value,
                          "cohen_dz": test.effect_size, "test_note": test.note})
        for row, adjusted in zip(block, holm([r["p_one_sided"] for r in block])):
            row["p_holm"] = adjusted
            row["verdict"] = _verdict(row)
        rows += block
    return pd.DataFrame(rows)


def _verdict(row: dict) -> str:
    if row["p_holm"] is None:
        return f"not tested: {row['test_note']}"
    numbers = f"mean diff {row['mean_diff']:+.4f}, d_z {row['cohen_dz']:.2f}, Holm p {row['p_holm']:.3f}"
    if row["p_holm"] < ALPHA:
        return f"improves over dense ({numbers})"
    return f"no significant improvement ({numbers})"


def speedups(curve_rows: pd.DataFrame) -> pd.DataFrame:
    """Per task x approach x level > 0: FLOP-count speedup against the measured inference speedup
    (batch of dev sentences, timed against the dense model in the same process); per task only."""
    table = levels(curve_rows[curve_rows["sparsity"] > 0])
    table["measured_over_flops"] = table["speedup_mean"] / table["flops_speedup"]
    return table[["task", "approach", "sparsity", "achieved_sparsity", "seeds", "flops_speedup", "speedup_mean",
                  "speedup_std", "measured_over_flops"]]


def deployment(curve_rows: pd.DataFrame) -> pd.DataFrame:
    """Per task: what a deployer chooses between: every model (dense, and each approach x level > 0)
    with its dev metric (mean and std over seeds), its FLOPs per token as a share of the dense
    model's and its measured inference speedup; which models lie on the front of dev against
    FLOPs/token (no other model of the task both smaller and better) and against speedup."""
    rows = curve_rows.assign(flops_share=1.0 / curve_rows["flops_speedup"])
    rows.loc[rows["sparsity"] == 0.0, "approach"] = "dense"
    rows = rows.drop_duplicates("run_id")
    table = rows.groupby(KEY + ["sparsity"]).agg(
        seeds=("seed", "nunique"), dev_mean=("dev", "mean"), dev_std=("dev", "std"),
        flops_share=("flops_share", "mean"), speedup_mean=("speedup", "mean")).reset_index()
    table.insert(1, "metric", table["task"].map(metric_name))
    table["front_flops"] = False
    table["front_speedup"] = False
    for _, group in table.groupby("task"):
        for cost, flag in ((group["flops_share"], "front_flops"), (-group["speedup_mean"], "front_speedup")):
            known = cost.notna()
            dev = group.loc[known, "dev_mean"].tolist()
            table.loc[group.index[known], flag] = pareto_front(cost[known].tolist(), dev)
    return table.sort_values(["task", "flops_share"], ascending=[True, False], ignore_index=True)


def cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task: dev metric against the training cost of every way to get a model (dense, and each
    approach x level > 0), means over seeds, with which points lie on the Pareto front of dev
    against training FLOPs and against wall time (per task)."""
    points = run_costs(with_approach(runs))
    points = points[(points["mode"] == "dense") | (points["sparsity"] > 0)].assign(dev=points[PRIMARY])
    table = points.groupby(KEY + ["sparsity"]).agg(
        seeds=("seed", "nunique"), achieved_sparsity=("achieved_sparsity", "mean"), dev_mean=("dev", "mean"),
        dev_std=("dev", "std"), train_flops=("cost_flops", "mean"), wall_seconds=("cost_seconds", "mean")).reset_index()
    table.insert(1, "metric", table["task"].map(metric_name))
    table["pareto_flops"] = False
    table["pareto_time"] = False
    for _, group in table.groupby("task"):
        for column, flag in (("train_flops", "pareto_flops"), ("wall_seconds", "pareto_time")):
            known = group[group[column].notna()]
            table.loc[known.index, flag] = pareto_front(known[column].tolist(), known["dev_mean"].tolist())
    return table


def early_bird(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per early-bird run: the found step, whether the mask converged, FLOPs and wall time
    per phase (columns missing from the runs stay empty), and the final dev metric."""
    found = with_approach(runs[runs["mode"] == "early_bird"])
    columns = ["early_bird_step", "early_bird_converged", "search_train_flops", "search_scoring_flops",
               "total_train_flops", "search_seconds", "prune_seconds", "final_seconds", "wall_seconds"]
    table = pd.DataFrame({"task": found["task"], "metric": found["task"].map(metric_name),
                          "approach": found["approach"], "sparsity": found["sparsity"], "seed": found["seed"],
                          **{c: _optional(found, c) for c in columns}, "dev": found[PRIMARY],
                          "synthetic": found["synthetic"], "run_id": found["run_id"]})
    return table.sort_values(["task", "approach", "sparsity", "seed"], ignore_index=True)


def imp_rounds(runs: pd.DataFrame, dev_history: pd.DataFrame) -> pd.DataFrame:
    """One row per IMP run x round: target sparsity of the round (``1 - (1 - s)^(r/R)``) and the dev
    metric after its training (``dev_history``: the runs' ``dev/overall`` per epoch)."""
    rows = []
    for _, run in runs[runs["mode"] == "imp"].iterrows():
        rounds, epochs = run.get("prune.imp_rounds"), run.get("train.epochs")
        if pd.isna(rounds) or pd.isna(epochs):
            continue
        history = dev_history[dev_history["run_id"] == run["run_id"]].set_index("step")["value"]
        for number in range(int(rounds) + 1):
            step = (number + 1) * int(epochs)
            rows.append({"task": run["task"], "metric": metric_name(run["task"]), "seed": run["seed"],
                         "final_sparsity": run["sparsity"], "round": number,
                         "target_sparsity": 1 - (1 - run["sparsity"]) ** (number / int(rounds)),
                         "epochs_so_far": step, "dev": history.get(step, np.nan)})
    return pd.DataFrame(rows)
