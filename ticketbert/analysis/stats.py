"""Statistics over seeds (scipy): summaries, bootstrap intervals, the tolerance threshold, a
paired one-sided test with its effect size, Holm's correction and the Pareto front.

Every function says when there are too few values instead of returning a number that looks
like a result: ``None`` plus a reason, never a fake interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 9999
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample std (ddof=1); NaN with one value
    median: float
    low: float
    high: float


def summarize(values: Sequence[float]) -> Summary:
    """Mean, sample std, median, min and max of ``values`` (at least one)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("summarize: no values")
    std = float(array.std(ddof=1)) if array.size > 1 else float("nan")
    return Summary(int(array.size), float(array.mean()), std, float(np.median(array)), float(array.min()),
                   float(array.max()))


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None
    note: str  # how it was computed, or why there is none

    @property
    def exists(self) -> bool:
        return self.low is not None


def bootstrap_mean_ci(values: Sequence[float], confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                      seed: int = BOOTSTRAP_SEED) -> Interval:
    """Percentile bootstrap interval of the mean over seeds (``scipy.stats.bootstrap``).

    One value has no interval. With n values the resampled means take at most C(2n-1, n)
    distinct values (3 seeds: 10), so the interval is coarse; the note says so.
    """
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return Interval(None, None, f"{array.size} seed: no interval (needs >= 2 seeds)")
    result = stats.bootstrap((array,), np.mean, confidence_level=confidence, n_resamples=resamples,
                             method="percentile", rng=np.random.default_rng(seed))
    note = f"{confidence:.0%} percentile bootstrap over {array.size} seeds"
    if array.size < 5:
        note += " (coarse: few seeds)"
    return Interval(float(result.confidence_interval.low), float(result.confidence_interval.high), note)


@dataclass(frozen=True)
class Threshold:
    sparsity: float  # achieved sparsity of the last level within tolerance
    flops_reduction: float  # largest 1 - FLOPs/dense FLOPs among the levels up to it
    note: str = ""  # e.g. where a missing level stopped the walk


def tolerance_threshold(levels: Sequence[float], achieved: Sequence[float], metric: Sequence[float],
                        flops_reduction: Sequence[float], dense: float, tolerance: float,
                        expected: Sequence[float] | None = None) -> Threshold:
    """The largest sparsity whose metric, and that of every lower level, stays >= ``dense - tolerance``.

    ``levels`` are target sparsities (one seed), ``achieved`` what pruning reached. ``expected``
    (the levels the other seeds have): a missing one stops the walk, so a threshold never jumps a
    level that was not measured.
    """
    by_level = {round(float(level), 6): i for i, level in enumerate(levels)}
    walk = sorted({round(float(level), 6) for level in (expected if expected is not None else levels)})
    kept, reduction, note = 0.0, 0.0, ""
    for level in walk:
        i = by_level.get(level)
        if i is None:
            note = f"level {level:g} missing: stopped there"
            break
        if metric[i] < dense - tolerance - 1e-12:
            break
        kept = max(kept, float(achieved[i]))
        reduction = max(reduction, float(flops_reduction[i]))
    return Threshold(kept, reduction, note)


@dataclass(frozen=True)
class PairedTest:
    n: int
    mean_diff: float  # mean of (pruned - dense) over seeds
    statistic: float | None  # paired t
    p_value: float | None  # one-sided: H1 pruned > dense
    effect_size: float | None  # Cohen's d_z = mean diff / sd of the diffs
    note: str


def paired_improvement(pruned: Sequence[float], dense: Sequence[float]) -> PairedTest:
    """One-sided paired t-test over seeds of 'pruning improves the dev metric over dense'
    (``scipy.stats.ttest_rel(pruned, dense, alternative='greater')``) and Cohen's d_z."""
    a, b = np.asarray(pruned, dtype=float), np.asarray(dense, dtype=float)
    diff = a - b
    if diff.size < 2:
        mean = float(diff.mean()) if diff.size else float("nan")
        return PairedTest(int(diff.size), mean, None, None, None, f"{diff.size} paired seed: no test (needs >= 2)")
    spread = float(diff.std(ddof=1))
    if spread == 0.0:
        return PairedTest(int(diff.size), float(diff.mean()), None, None, None,
                          "every seed moved by the same amount: t and d_z undefined")
    result = stats.ttest_rel(a, b, alternative="greater")
    return PairedTest(int(diff.size), float(diff.mean()), float(result.statistic), float(result.pvalue),
                      float(diff.mean() / spread), f"paired t-test, one-sided, {diff.size} seeds")


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (``None`` entries are skipped and stay ``None``)."""
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    m = len(present)
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def pareto_front(cost: Sequence[float], value: Sequence[float]) -> list[bool]:
    """Which points no other point dominates (cost <= and value >=, one of them strictly):
    the cheapest way to each level of the metric."""
    cost_a, value_a = np.asarray(cost, dtype=float), np.asarray(value, dtype=float)
    front = []
    for c, v in zip(cost_a, value_a):
        dominated = np.any((cost_a <= c) & (value_a >= v) & ((cost_a < c) | (value_a > v)))
        front.append(not bool(dominated))
    return front
