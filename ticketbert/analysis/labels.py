"""Human names: a task's primary metric as the reference study writes it, and a run's approach."""

from __future__ import annotations

import pandas as pd

from ticketbert.pruning.methods import is_dense
from ticketbert.tasks import get_task

TASK_NAMES = {"sst": "SST", "para": "Quora", "sts": "STS"}
METRIC_NAMES = {"accuracy": "accuracy", "pearson": "Pearson"}
MODE_NAMES = {"dense": "dense", "posthoc": "post-hoc", "early_bird": "early-bird", "imp": "IMP"}


def metric_name(task: str) -> str:
    """``dev/overall`` of ``task`` in words: 'SST accuracy', 'STS Pearson'; a multitask run's
    overall is the mean of its tasks' primary metrics."""
    names = task.split("+")
    if len(names) > 1:
        return "overall (mean of " + ", ".join(metric_name(n) for n in names) + ")"
    primary = get_task(task).primary_metric
    return f"{TASK_NAMES.get(task, task)} {METRIC_NAMES.get(primary, primary)}"


def approach(mode: str, method: str, criterion: str, recovery_epochs: float | None = None,
             pattern: str | None = None) -> str:
    """'post-hoc ffn (taylor)', 'post-hoc + 1 recovery epoch magnitude (l1)', 'early-bird heads (l1)',
    'post-hoc wanda 2:4 (activation)' (an N:M ``pattern``), 'dense'."""
    if mode == "dense" or is_dense(method):
        return "dense"
    name = MODE_NAMES.get(mode, mode)
    if mode == "posthoc" and recovery_epochs is not None and not pd.isna(recovery_epochs) and recovery_epochs > 0:
        count = int(recovery_epochs)
        name += f" + {count} recovery epoch{'s' if count > 1 else ''}"
    shape = f" {pattern}" if pattern and pattern != "none" and not pd.isna(pattern) else ""
    return f"{name} {method}{shape}" + (f" ({criterion})" if criterion else "")


def with_approach(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with an ``approach`` column (see ``approach``)."""
    recovery = runs["prune.recovery_epochs"] if "prune.recovery_epochs" in runs else pd.Series(None, index=runs.index)
    patterns = runs["pattern"] if "pattern" in runs else pd.Series(None, index=runs.index)
    runs = runs.copy()
    runs["approach"] = [approach(m, me, c, r, p) for m, me, c, r, p in
                        zip(runs["mode"], runs["method"], runs["criterion"], recovery, patterns)]
    return runs
