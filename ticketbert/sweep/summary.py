"""The table printed at the end of a sweep."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from ticketbert.pruning.methods import is_dense


def summarize(points: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per task x method (with its N:M pattern, "wanda 2:4") x sparsity: best and mean
    dev metric over seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for point, result in zip(points, results):
        method = f"{point['method']} {point['pattern']}" if point.get("pattern") else point["method"]
        groups[(point["task"], method, point["sparsity"])].append(result)
    rows = []
    for (task, method, sparsity), group in groups.items():
        done = [r for r in group if "error" not in r and "dev/overall" in r]
        devs = [r["dev/overall"] for r in done]
        rows.append({"task": task, "method": method, "sparsity": sparsity, "seeds": f"{len(done)}/{len(group)}",
                     "best_dev": max(devs) if devs else float("nan"),
                     "mean_dev": statistics.fmean(devs) if devs else float("nan"),
                     "train_dev_gap": statistics.fmean(r["train/overall"] - r["dev/overall"] for r in done) if done else float("nan"),
                     "achieved": statistics.fmean(r.get("achieved_sparsity", 0.0) for r in done) if done else float("nan"),
                     "speedup": statistics.fmean(r.get("speedup", 1.0) for r in done) if done else float("nan")})
    return rows


def training_flops(points: list[dict[str, Any]], results: list[dict[str, Any]],
                   dense: list[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """Per dense group (task, seed): (group, FLOPs its whole sweep spent on training and
    scoring, FLOPs of its one dense fine-tune)."""
    spent: dict[str, float] = defaultdict(float)
    for point, result in zip(points, results):
        if "error" not in result and not is_dense(point["method"]):
            spent[f"{point['task']}/s{point['seed']}"] += sum(
                result.get(k, 0.0) for k in ("recovery_train_flops", "scoring_flops", "total_train_flops"))
    rows = []
    for result in dense:
        if "error" in result:
            continue
        group = result["label"].replace("-dense-", "/")
        rows.append((group, result.get("train_flops", 0.0) + spent[group], result.get("train_flops", 0.0)))
    return rows


SYNTHETIC_BANNER = "*** SYNTHETIC DATA: these numbers say nothing about language (data.source=synthetic) ***"


def print_summary(points: list[dict[str, Any]], results: list[dict[str, Any]], dense: list[dict[str, Any]],
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
    failed = [r["label"] for r in results if "error" in r]
    if failed:
        print(f"failed trials ({len(failed)}): {', '.join(failed)}")
    for group, total, one in training_flops(points, results, dense):
        trials = sum(1 for p in points if f"{p['task']}/s{p['seed']}" == group and not is_dense(p["method"]))
        print(f"training FLOPs {group}: {total:.3e} for {trials} pruning trials + their dense fine-tune = "
              f"{total / one:.2f}x one dense fine-tune ({one:.3e})")
    if synthetic:
        print(SYNTHETIC_BANNER)
