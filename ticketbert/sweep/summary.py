"""The table printed at the end of a sweep."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from ticketbert.pruning.methods import is_dense
from ticketbert.sweep.records import GridPoint, TrialResult


def summarize(points: list[GridPoint], results: list[TrialResult]) -> list[dict[str, Any]]:
    """One row per task x method (with its N:M pattern, "wanda 2:4") x sparsity: best and mean
    dev metric over seeds."""
    groups: dict[tuple, list[TrialResult]] = defaultdict(list)
    for point, result in zip(points, results):
        groups[(point.task, point.method_label, point.sparsity)].append(result)
    rows = []
    for (task, method, sparsity), group in groups.items():
        done = [r for r in group if r.dev is not None]
        devs = [r.dev for r in done]
        rows.append({"task": task, "method": method, "sparsity": sparsity, "seeds": f"{len(done)}/{len(group)}",
                     "best_dev": max(devs, default=float("nan")), "mean_dev": _mean(devs),
                     "train_dev_gap": _mean([r.metrics["train/overall"] - r.dev for r in done]),
                     "achieved": _mean([r.metrics.get("achieved_sparsity", 0.0) for r in done]),
                     "speedup": _mean([r.metrics.get("speedup", 1.0) for r in done])})
    return rows


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def training_flops(points: list[GridPoint], results: list[TrialResult],
                   dense: list[TrialResult]) -> list[tuple[str, float, float]]:
    """Per dense group (task, seed): (group, FLOPs its whole sweep spent on training and
    scoring, FLOPs of its one dense fine-tune)."""
    spent: dict[str, float] = defaultdict(float)
    for point, result in zip(points, results):
        if result.ok and not is_dense(point.method):
            spent[point.group.name] += sum(
                result.metrics.get(k, 0.0) for k in ("recovery_train_flops", "scoring_flops", "total_train_flops"))
    rows = []
    for result in dense:
        if not result.ok:
            continue
        group = result.label.replace("-dense-", "/")
        one = result.metrics.get("train_flops", 0.0)
        rows.append((group, one + spent[group], one))
    return rows


SYNTHETIC_BANNER = "*** SYNTHETIC DATA: these numbers say nothing about language (data.source=synthetic) ***"


def print_summary(points: list[GridPoint], results: list[TrialResult], dense: list[TrialResult],
                  data: str, synthetic: bool, metrics: dict[str, str] | None = None) -> None:
    """The final table, titled with the data it was measured on and each task's primary
    metric (``metrics``: task -> 'sst2 accuracy'); synthetic results are framed by a banner
    above and below."""
    rows = summarize(points, results)
    width = max([5, *(len(r["task"]) for r in rows)])
    header = f"{'task':<{width}} {'method':<10} {'sparsity':>8} {'seeds':>5} {'best dev':>9} {'mean dev':>9} " \
             f"{'train-dev':>9} {'achieved':>8} {'speedup':>7}"
    named = ", ".join(metrics.values()) if metrics else "each task's primary metric"
    print(f"\nbest dev metric (dev/overall: {named}) per task x method x sparsity")
    print(f"data: {data}")
    if synthetic:
        print(SYNTHETIC_BANNER)
    print(header)
    print("-" * len(header))
    for r in sorted(rows, key=lambda r: (r["task"], r["method"], r["sparsity"])):
        print(f"{r['task']:<{width}} {r['method']:<10} {r['sparsity']:>8.2f} {r['seeds']:>5} {r['best_dev']:>9.4f} "
              f"{r['mean_dev']:>9.4f} {r['train_dev_gap']:>9.4f} {r['achieved']:>8.3f} {r['speedup']:>7.2f}")
    failed = [r.label for r in results if not r.ok]
    if failed:
        print(f"failed trials ({len(failed)}): {', '.join(failed)}")
    for group, total, one in training_flops(points, results, dense):
        trials = sum(1 for p in points if p.group.name == group and not is_dense(p.method))
        print(f"training FLOPs {group}: {total:.3e} for {trials} pruning trials + their dense fine-tune = "
              f"{total / one:.2f}x one dense fine-tune ({one:.3e})")
    if synthetic:
        print(SYNTHETIC_BANNER)
