"""The analyses as tables: sparsity thresholds, overfitting, compute."""

from __future__ import annotations

import pandas as pd

from analysis.runs import PRIMARY


def per_level(runs: pd.DataFrame, metric: str = PRIMARY) -> pd.DataFrame:
    """Mean (and count) of ``metric`` and compute columns over seeds, per task x method x criterion x level."""
    pruned = runs[runs["method"] != "none"]
    columns = [c for c in (metric, PRIMARY.replace("dev", "train"), "achieved_sparsity", "speedup",
                           "flops_per_token", "params", "latency_ms") if c in pruned]
    grouped = pruned.groupby(["task", "method", "criterion", "sparsity"])[columns]
    table = grouped.mean()
    table["seeds"] = grouped.size()
    return table.reset_index()


def sparsity_thresholds(runs: pd.DataFrame, tolerance: float = 0.01, metric: str = PRIMARY) -> pd.DataFrame:
    """Per task x method: the largest sparsity up to which the dev metric stays within
    ``tolerance`` (absolute, 0.01 = 1 point) of the unpruned model (level 0), at every level."""
    rows = []
    for (task, method, criterion), group in per_level(runs, metric).groupby(["task", "method", "criterion"]):
        group = group.sort_values("achieved_sparsity")
        dense = group.loc[group["sparsity"] == 0.0, metric]
        if dense.empty:
            continue
        reference, kept = float(dense.iloc[0]), 0.0
        for _, level in group.iterrows():
            if level[metric] < reference - tolerance:
                break
            kept = float(level["achieved_sparsity"])
        best = group.loc[group[metric].idxmax()]
        rows.append({"task": task, "method": method, "criterion": criterion, "dense": reference,
                     "kept_sparsity": kept, "best": float(best[metric]),
                     "best_at": float(best["achieved_sparsity"]), "max_tested": float(group["achieved_sparsity"].max())})
    return pd.DataFrame(rows)


def overfitting(runs: pd.DataFrame) -> pd.DataFrame:
    """Train minus dev of the primary metric per level: does pruning shrink the gap?"""
    table = per_level(runs)
    train = PRIMARY.replace("dev", "train")
    table["gap"] = table[train] - table[PRIMARY]
    return table[["task", "method", "criterion", "sparsity", "achieved_sparsity", train, PRIMARY, "gap"]]


def compute(runs: pd.DataFrame) -> pd.DataFrame:
    """Measured speedup against the FLOP-count reduction per level."""
    table = per_level(runs)
    if "flops_per_token" in table:
        dense = table.groupby(["task", "method", "criterion"])["flops_per_token"].transform("max")
        table["flops_speedup"] = dense / table["flops_per_token"]
    keep = [c for c in ("task", "method", "criterion", "sparsity", "achieved_sparsity", "params", "flops_speedup",
                        "speedup", "latency_ms") if c in table]
    return table[keep]
