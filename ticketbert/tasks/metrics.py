"""Split-level metrics in numpy/scipy (no sklearn)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of exact matches."""
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def _f1(tp: float, fp: float, fn: float) -> float:
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def binary_f1(predictions: np.ndarray, labels: np.ndarray) -> float:
    """F1 of the positive class (label 1)."""
    p, y = np.asarray(predictions) == 1, np.asarray(labels) == 1
    return float(_f1(np.sum(p & y), np.sum(p & ~y), np.sum(~p & y)))


def macro_f1(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over all ``num_classes`` classes."""
    p, y = np.asarray(predictions), np.asarray(labels)
    scores = [_f1(np.sum((p == c) & (y == c)), np.sum((p == c) & (y != c)), np.sum((p != c) & (y == c)))
              for c in range(num_classes)]
    return float(np.mean(scores))


def _correlation(name: str, statistic, predictions: np.ndarray, labels: np.ndarray) -> float:
    """``statistic`` of the two; NaN with a warning when either side is constant (undefined)."""
    p, y = np.asarray(predictions, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    constant = [side for side, values in (("predictions", p), ("labels", y)) if values.std() == 0]
    if constant:
        warnings.warn(f"{name} is undefined: the {' and '.join(constant)} are constant; reported as NaN",
                      RuntimeWarning, stacklevel=3)
        return float("nan")
    return float(statistic(p, y).statistic)


def pearson(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Pearson correlation; NaN (with a warning) when either side is constant."""
    return _correlation("pearson", stats.pearsonr, predictions, labels)


def spearman(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Spearman rank correlation; NaN (with a warning) when either side is constant."""
    return _correlation("spearman", stats.spearmanr, predictions, labels)
