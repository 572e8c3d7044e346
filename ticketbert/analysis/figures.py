"""Figures, one per task (never averaged over tasks): dev and train metric against sparsity
(the reference study's Figs 2-4, with seed bands and the dense tolerance band), measured against
FLOP-count speedup, dev metric against the model's FLOPs per token and measured speedup, and early-bird mask
distance curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from ticketbert.analysis.labels import metric_name  # noqa: E402
from ticketbert.analysis.tables import levels  # noqa: E402

STYLE = {"font.size": 12, "axes.titlesize": 12, "legend.fontsize": 10, "axes.grid": True, "grid.alpha": 0.3}
DPI = 100
DENSE_COLOR = "0.35"


def palette(names) -> dict[str, tuple]:
    """One colour per approach, the same in every figure of a report."""
    colors = plt.get_cmap("tab10").colors
    return {name: colors[i % len(colors)] for i, name in enumerate(sorted(set(names)))}


def _title(task: str, synthetic: bool) -> str:
    return metric_name(task) + (" - SYNTHETIC DATA, metrics mean nothing" if synthetic else "")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def metric_vs_sparsity(curve_rows: pd.DataFrame, out: Path, tolerance: float, colors: dict) -> list[Path]:
    """Per task: dev and train-subsample metric (one shared y-scale) and their gap against achieved
    sparsity; mean over seeds with a min-max band; the dense model and its tolerance band."""
    paths = []
    for task, rows in curve_rows.groupby("task"):
        table = levels(rows)
        dense = rows[rows["sparsity"] == 0.0].drop_duplicates(["experiment_id", "seed"])
        seeds = int(table["seeds"].max())
        with plt.rc_context(STYLE):
            fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1, 1, 0.8]})
            axes[1].sharey(axes[0])
            for approach, curve in table.groupby("approach"):
                curve = curve.sort_values("sparsity")
                for axis, split in ((axes[0], "dev"), (axes[1], "train"), (axes[2], "gap")):
                    axis.plot(curve["achieved_sparsity"], curve[f"{split}_mean"], marker="o",
                              color=colors[approach], label=approach)
                    if seeds > 1:
                        axis.fill_between(curve["achieved_sparsity"], curve[f"{split}_min"], curve[f"{split}_max"],
                                          color=colors[approach], alpha=0.15, linewidth=0)
            dev, train = dense["dev"].mean(), dense["train"].mean()
            axes[0].axhline(dev, color=DENSE_COLOR, linestyle="--", label=f"dense {dev:.3f}")
            axes[0].axhspan(dev - tolerance, dev, color=DENSE_COLOR, alpha=0.12,
                            label=f"within {round(tolerance * 100, 2):g} pt of dense")
            axes[1].axhline(train, color=DENSE_COLOR, linestyle="--", label=f"dense {train:.3f}")
            axes[2].axhline(train - dev, color=DENSE_COLOR, linestyle="--", label="dense")
            name = metric_name(task)
            for axis, label in zip(axes, (f"dev {name}", f"train-subsample {name}", "train - dev")):
                axis.set_xlabel("sparsity (prunable weights removed)")
                axis.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
                axis.set_ylabel(label)
                axis.legend(loc="best")
            axes[0].set_title("dev")
            axes[1].set_title("train subsample (same y-scale)")
            axes[2].set_title("overfitting gap")
            band = f"mean of {seeds} seeds, band = min-max over seeds" if seeds > 1 else "1 seed: no band"
            fig.suptitle(f"{_title(task, bool(rows['synthetic'].any()))} ({band})")
            paths.append(_save(fig, out / f"{task}_metric_vs_sparsity.png"))
    return paths


def speedup(curve_rows: pd.DataFrame, out: Path, colors: dict) -> Path | None:
    """One panel per task: measured inference speedup against FLOP-count speedup (y = x drawn)."""
    table = levels(curve_rows[curve_rows["sparsity"] > 0]).dropna(subset=["flops_speedup", "speedup_mean"])
    if table.empty:
        return None
    tasks = sorted(table["task"].unique())
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.4), squeeze=False)
        for axis, task in zip(axes[0], tasks):
            rows = table[table["task"] == task]
            top = max(rows["flops_speedup"].max(), rows["speedup_mean"].max()) * 1.05
            axis.plot([1, top], [1, top], color=DENSE_COLOR, linestyle="--", label="measured = FLOP count")
            for approach, curve in rows.groupby("approach"):
                curve = curve.sort_values("flops_speedup")
                axis.errorbar(curve["flops_speedup"], curve["speedup_mean"], yerr=curve["speedup_std"].fillna(0),
                              marker="o", capsize=3, color=colors[approach], label=approach)
            axis.set_xlabel("FLOP-count speedup (x)")
            axis.set_ylabel("measured inference speedup (x)")
            axis.set_title(_title(task, bool(curve_rows.loc[curve_rows["task"] == task, "synthetic"].any())))
            axis.legend(loc="upper left")
        fig.suptitle("Inference speedup per task (batch of dev sentences, vs dense in the same process)")
        return _save(fig, out / "speedup_vs_flops.png")


def deployment(table: pd.DataFrame, curve_rows: pd.DataFrame, out: Path, colors: dict) -> list[Path]:
    """Per task: dev metric against the model's FLOPs per token (share of dense) and against its
    measured inference speedup, every approach x level and dense, the front of each drawn."""
    paths = []
    for task, rows in table.groupby("task"):
        with plt.rc_context(STYLE):
            fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
            for axis, column, flag, label, scale in (
                    (axes[0], "flops_share", "front_flops",
                     "FLOPs per token (% of dense; magnitude: non-zero weights)", 100.0),
                    (axes[1], "speedup_mean", "front_speedup", "measured inference speedup (x)", 1.0)):
                known = rows[rows[column].notna()]
                for approach, points in known.groupby("approach"):
                    color = DENSE_COLOR if approach == "dense" else colors[approach]
                    axis.errorbar(points[column] * scale, points["dev_mean"], yerr=points["dev_std"].fillna(0),
                                  fmt="s" if approach == "dense" else "o", capsize=3, color=color, label=approach)
                front = known[known[flag]].sort_values(column)
                axis.plot(front[column] * scale, front["dev_mean"], color="black", linewidth=1, label="front")
                axis.set_xlabel(label)
                axis.set_ylabel(f"dev {metric_name(task)}")
                axis.legend(loc="best")
            axes[0].invert_xaxis()  # smaller models to the right, like faster ones
            synthetic = bool(curve_rows.loc[curve_rows["task"] == task, "synthetic"].any())
            fig.suptitle(f"{_title(task, synthetic)}: which model to deploy (mean over seeds, bars = std)")
            paths.append(_save(fig, out / f"{task}_deployment.png"))
    return paths


def mask_distance(history: pd.DataFrame, early: pd.DataFrame, epsilon: dict[str, float], out: Path) -> list[Path]:
    """Per task: early-bird mask distance between consecutive draws against the optimizer step,
    one line per run, with the run's epsilon and found step."""
    if history.empty:
        return []
    history = history.merge(early[["run_id", "task", "approach", "sparsity", "seed", "early_bird_step", "synthetic"]],
                            on="run_id")
    paths = []
    for task, rows in history.groupby("task"):
        colors = palette(rows["approach"] + rows["sparsity"].map(lambda s: f" {s:g}"))
        with plt.rc_context(STYLE):
            fig, axis = plt.subplots(figsize=(7.5, 4.6))
            for (approach, sparsity, seed, run_id), curve in rows.groupby(["approach", "sparsity", "seed", "run_id"]):
                label = f"{approach} {sparsity:g}"
                curve = curve.sort_values("step")
                axis.plot(curve["step"], curve["value"], marker=".", color=colors[label],
                          linestyle=("-", "--", "-.", ":")[int(seed) % 4], label=f"{label}, seed {seed}")
                found = curve["early_bird_step"].iloc[0]
                if pd.notna(found):
                    axis.axvline(found, color=colors[label], linestyle=":", linewidth=1)
            for value in sorted({epsilon[r] for r in rows["run_id"].unique() if r in epsilon}):
                axis.axhline(value, color=DENSE_COLOR, linestyle="--", label=f"epsilon {value:g}")
            axis.set_xlabel("optimizer step (dotted: ticket found)")
            axis.set_ylabel("mask distance to previous draw")
            axis.set_title(f"{_title(task, bool(rows['synthetic'].any()))}: early-bird mask distance")
            axis.legend(loc="upper right")
            paths.append(_save(fig, out / f"{task}_early_bird_mask_distance.png"))
    return paths
