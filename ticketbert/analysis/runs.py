"""Pruning results from MLflow (a laptop store or a team's server), one row per run."""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from ticketbert.analysis.labels import remember_metric_names
from ticketbert.tracking import default_tracking_uri

PRIMARY = "dev/overall"  # single task: its primary metric; multitask: the mean of its tasks' primary metrics
TRAIN_PRIMARY = "train/overall"
# run-config params the analyses need (logged flattened by ticketbert.tracking)
PARAMS = {"prune.recovery_epochs": int, "prune.imp_rounds": int, "prune.early_bird_epsilon": float,
          "train.epochs": int}


def load_runs(experiments: list[str], tracking_uri: str | None = None, parent_run_id: str | None = None) -> pd.DataFrame:
    """Finished training and pruning runs of ``experiments`` with their tags, final metrics and wall time.

    Columns: run_id, experiment_id, task, mode (dense, posthoc, early_bird, imp), method, criterion, pattern (N:M or
    "none"), seed (int),
    sparsity (target), synthetic (bool), wall_seconds, the ``PARAMS`` above and every logged metric
    (``dev/...``, ``train/...``, ``achieved_sparsity``, ``speedup`` ...; the last value of each).
    Sweep parent runs are dropped; ``parent_run_id`` keeps only that sweep's trials.
    """
    mlflow.set_tracking_uri(tracking_uri or default_tracking_uri())
    frame = mlflow.search_runs(experiment_names=experiments, filter_string="attributes.status = 'FINISHED'")
    if frame.empty:
        raise ValueError(f"no finished runs in experiment(s) {experiments}")
    frame = frame[_column(frame, "tags.mode") != "sweep"]
    if parent_run_id is not None:
        frame = frame[_column(frame, "tags.mlflow.parentRunId") == parent_run_id]
    frame = frame[_column(frame, "tags.task").notna() & _column(frame, f"metrics.{PRIMARY}").notna()]
    if frame.empty:
        scope = f" under parent run {parent_run_id}" if parent_run_id else ""
        raise ValueError(f"no finished runs with a task tag and {PRIMARY} in experiment(s) {experiments}{scope}")
    runs = pd.DataFrame({
        "run_id": frame["run_id"], "experiment_id": frame["experiment_id"], "task": frame["tags.task"], "mode": frame["tags.mode"].fillna("dense"),
        "method": frame["tags.method"].fillna("none"), "criterion": _column(frame, "tags.criterion").fillna(""),
        "pattern": _column(frame, "tags.pattern").fillna("none"),
        "seed": pd.to_numeric(frame["tags.seed"]).astype(int), "sparsity": frame["tags.sparsity"].astype(float),
        "synthetic": _column(frame, "tags.synthetic_data").fillna("False") == "True",
        "data_fingerprint": _column(frame, "tags.data_fingerprint").fillna("unknown"),
        "wall_seconds": (frame["end_time"] - frame["start_time"]).dt.total_seconds(),
    })
    metric_tags = _column(frame, "tags.task_metric")
    tagged = ~runs["task"].str.contains("+", regex=False) & metric_tags.notna()
    remember_metric_names(dict(zip(runs["task"][tagged], metric_tags[tagged])))
    for name, kind in PARAMS.items():
        values = _column(frame, f"params.{name}")
        runs[name] = pd.to_numeric(values, errors="coerce").astype(float if kind is float else "Int64")
    for column in frame.columns:
        if column.startswith("metrics."):
            runs[column.removeprefix("metrics.")] = frame[column].astype(float)
    runs.loc[runs["mode"] == "dense", "method"] = "none"
    runs.loc[runs["mode"] == "dense", "achieved_sparsity"] = 0.0
    return runs.reset_index(drop=True)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]``, or an all-missing column when no run has it."""
    return frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)


def metric_history(tracking_uri: str | None, run_ids: list[str], key: str) -> pd.DataFrame:
    """Every logged value of ``key`` for ``run_ids``: columns run_id, step, value (empty if none)."""
    client = MlflowClient(tracking_uri or default_tracking_uri())
    rows = [{"run_id": run_id, "step": m.step, "value": m.value}
            for run_id in run_ids for m in client.get_metric_history(run_id, key)]
    return pd.DataFrame(rows, columns=["run_id", "step", "value"])
