"""Split-level metrics in numpy (scipy's ranks for Spearman); every one takes
``(predictions, labels, num_labels)`` so that the registry calls them alike."""

from __future__ import annotations

import warnings

import numpy as np


def accuracy(predictions: np.ndarray, labels: np.ndarray, num_labels: int | None = None) -> float:
    """Fraction of exact matches."""
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def _f1(tp: float, fp: float, fn: float) -> float:
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def binary_f1(predictions: np.ndarray, labels: np.ndarray, num_labels: int | None = None) -> float:
    """F1 of the positive class (label 1)."""
    p, y = np.asarray(predictions) == 1, np.asarray(labels) == 1
    return float(_f1(np.sum(p & y), np.sum(p & ~y), np.sum(~p & y)))


def macro_f1(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    """Unweighted mean of per-class F1 over all ``num_labels`` classes."""
    p, y = np.asarray(predictions), np.asarray(labels)
    scores = [_f1(np.sum((p == c) & (y == c)), np.sum((p == c) & (y != c)), np.sum((p != c) & (y == c)))
              for c in range(num_labels)]
    return float(np.mean(scores))


def matthews(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    """Matthews correlation coefficient (multi-class form, Gorodkin 2004); 0 when undefined."""
    p, y = np.asarray(predictions).astype(int), np.asarray(labels).astype(int)
    confusion = np.zeros((num_labels, num_labels))
    np.add.at(confusion, (y, p), 1)
    correct, total = np.trace(confusion), confusion.sum()
    predicted, true = confusion.sum(0), confusion.sum(1)
    denominator = np.sqrt((total ** 2 - predicted @ predicted) * (total ** 2 - true @ true))
    return float((correct * total - predicted @ true) / denominator) if denominator else 0.0


def _correlation(name: str, p: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of ``p`` and ``y``; NaN with a warning when either side is constant (undefined)."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    constant = [side for side, values in (("predictions", p), ("labels", y)) if values.std() == 0]
    if constant:
        warnings.warn(f"{name} is undefined: the {' and '.join(constant)} are constant; reported as NaN",
                      RuntimeWarning, stacklevel=3)
        return float("nan")
    p, y = p - p.mean(), y - y.mean()
    return float(np.clip((p @ y) / np.sqrt((p @ p) * (y @ y)), -1.0, 1.0))


def pearson(predictions: np.ndarray, labels: np.ndarray, num_labels: int | None = None) -> float:
    """Pearson correlation; NaN (with a warning) when either side is constant."""
    return _correlation("pearson", predictions, labels)


def spearman(predictions: np.ndarray, labels: np.ndarray, num_labels: int | None = None) -> float:
    """Spearman rank correlation (Pearson of average ranks); NaN (with a warning) when either side is constant."""
    from scipy.stats import rankdata

    return _correlation("spearman", rankdata(predictions), rankdata(labels))
