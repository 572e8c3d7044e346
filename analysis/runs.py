"""Pruning results from MLflow (a laptop store or a team's server), one row per run."""

from __future__ import annotations

import mlflow
import pandas as pd

from ticketbert.tracking import default_tracking_uri

PRIMARY = "dev/overall"  # single task: its primary metric; multitask: mean of SST acc, para acc, STS Pearson


def load_runs(experiments: list[str], tracking_uri: str | None = None) -> pd.DataFrame:
    """Pruned and dense runs of ``experiments`` with their tags and final metrics.

    Columns: task, method, criterion, mode, seed, sparsity (target), achieved_sparsity and every
    logged metric (``dev/...``, ``train/...``, ``speedup`` ...). Sweep parent runs are dropped.
    """
    mlflow.set_tracking_uri(tracking_uri or default_tracking_uri())
    frame = mlflow.search_runs(experiment_names=experiments, filter_string="attributes.status = 'FINISHED'")
    if frame.empty:
        raise ValueError(f"no finished runs in experiment(s) {experiments}")
    frame = frame[frame.get("tags.mode", pd.Series(index=frame.index, dtype=object)) != "sweep"]
    frame = frame[frame["tags.task"].notna() & frame[f"metrics.{PRIMARY}"].notna()]
    runs = pd.DataFrame({
        "run_id": frame["run_id"], "task": frame["tags.task"], "method": frame["tags.method"].fillna("none"),
        "criterion": frame.get("tags.criterion", "").fillna(""), "mode": frame["tags.mode"],
        "seed": frame["tags.seed"], "sparsity": frame["tags.sparsity"].astype(float),
    })
    for column in frame.columns:
        if column.startswith("metrics."):
            runs[column.removeprefix("metrics.")] = frame[column]
    dense = runs["method"] == "none"
    runs.loc[dense, "achieved_sparsity"] = 0.0
    return runs.reset_index(drop=True)
