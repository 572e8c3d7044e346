"""Figures: dev and train metric against sparsity per task (the reference study's Figs 2-4),
and measured speedup against sparsity."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.runs import PRIMARY  # noqa: E402
from analysis.tables import per_level  # noqa: E402


def metric_vs_sparsity(runs: pd.DataFrame, out: Path) -> list[Path]:
    """One figure per task: dev (left) and train (right) metric against achieved sparsity."""
    table = per_level(runs)
    train = PRIMARY.replace("dev", "train")
    paths = []
    for task, group in table.groupby("task"):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
        for (method, criterion), curve in group.groupby(["method", "criterion"]):
            curve = curve.sort_values("achieved_sparsity")
            label = f"{method} ({criterion})" if criterion else method
            axes[0].plot(curve["achieved_sparsity"], curve[PRIMARY], marker="o", label=label)
            if train in curve:
                axes[1].plot(curve["achieved_sparsity"], curve[train], marker="o", label=label)
        for axis, split in zip(axes, ("dev", "train")):
            axis.set_xlabel("sparsity (fraction of prunable encoder weights removed)")
            axis.set_ylabel(f"{split} primary metric")
            axis.set_title(f"{task}: {split}")
            axis.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{task}_metric_vs_sparsity.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def speedup_vs_sparsity(runs: pd.DataFrame, out: Path) -> Path:
    table = per_level(runs)
    fig, axis = plt.subplots(figsize=(6, 4))
    for (method, criterion), curve in table.groupby(["method", "criterion"]):
        curve = curve.groupby("sparsity").mean(numeric_only=True).sort_values("achieved_sparsity")
        axis.plot(curve["achieved_sparsity"], curve["speedup"], marker="o", label=method)
    axis.set_xlabel("sparsity")
    axis.set_ylabel("measured speedup vs dense")
    axis.grid(alpha=0.3)
    axis.legend()
    fig.tight_layout()
    path = out / "speedup_vs_sparsity.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
