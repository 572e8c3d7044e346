"""Each head's loss and metric against an independent numpy/scipy computation."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import stats

from ticketbert.tasks import shipped_task
from ticketbert.tasks.metrics import binary_f1, macro_f1, matthews, pearson, spearman

rng = np.random.default_rng(0)


def test_sst_cross_entropy_matches_numpy():
    task = shipped_task("sst")
    logits = rng.normal(size=(7, 5))
    labels = rng.integers(0, 5, size=7)
    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    expected = -log_probs[np.arange(7), labels].mean()
    got = float(task.loss(torch.tensor(logits), torch.tensor(labels, dtype=torch.float32)))
    assert got == pytest.approx(expected, rel=1e-6)


def test_para_bce_matches_numpy():
    task = shipped_task("para")
    logits = rng.normal(size=9) * 3
    labels = rng.integers(0, 2, size=9).astype(float)
    probs = 1 / (1 + np.exp(-logits))
    expected = -(labels * np.log(probs) + (1 - labels) * np.log(1 - probs)).mean()
    assert float(task.loss(torch.tensor(logits), torch.tensor(labels))) == pytest.approx(expected, rel=1e-6)


def test_sts_head_is_scaled_cosine_and_l1_loss():
    task = shipped_task("sts")
    head = task.build_head(6, dropout=0.0).eval()
    with torch.no_grad():
        head.projection.weight.copy_(torch.tensor(rng.normal(size=(6, 6)), dtype=torch.float32))
        head.projection.bias.copy_(torch.tensor(rng.normal(size=6), dtype=torch.float32))
    u, v = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    w, b = head.projection.weight.detach().double().numpy(), head.projection.bias.detach().double().numpy()
    pu, pv = u @ w.T + b, v @ w.T + b
    cosine = (pu * pv).sum(1) / np.linalg.norm(pu, axis=1) / np.linalg.norm(pv, axis=1)
    out = head([torch.tensor(u, dtype=torch.float32), torch.tensor(v, dtype=torch.float32)]).detach()
    np.testing.assert_allclose(out.numpy(), 5 * cosine, rtol=1e-5, atol=1e-5)
    labels = rng.uniform(0, 5, size=4)
    assert float(task.loss(out, torch.tensor(labels))) == pytest.approx(np.abs(5 * cosine - labels).mean(), rel=1e-5)


def test_para_bi_encoder_features():
    head = shipped_task("para").build_head(3, dropout=0.0).eval()
    u, v = torch.randn(2, 3), torch.randn(2, 3)
    features = torch.cat([u, v, (u - v).abs(), u * v], dim=-1)
    expected = features @ head.classifier.weight.T + head.classifier.bias
    torch.testing.assert_close(head([u, v]), expected.squeeze(-1))
    para = shipped_task("para")
    cross = replace(para, definition=para.definition.model_copy(update={"encoding": "cross"}))
    assert cross.build_head(3, dropout=0.1).classifier.in_features == 3 and cross.segments() == 1


def confusion_f1(pred, gold, positive):
    tp = sum(1 for p, g in zip(pred, gold) if p == positive and g == positive)
    fp = sum(1 for p, g in zip(pred, gold) if p == positive and g != positive)
    fn = sum(1 for p, g in zip(pred, gold) if p != positive and g == positive)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def test_f1_scores_against_precision_recall_definition():
    pred, gold = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    expected = np.mean([confusion_f1(pred, gold, c) for c in range(5)])
    assert macro_f1(pred, gold, 5) == pytest.approx(expected)
    bp, bg = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    assert binary_f1(bp, bg) == pytest.approx(confusion_f1(bp, bg, 1))
    assert matthews(bp, bg, 2) == pytest.approx(np.corrcoef(bp, bg)[0, 1])  # binary MCC: the phi coefficient


def test_correlations_against_definitions():
    x, y = rng.normal(size=50), rng.normal(size=50)
    y = x + 0.5 * y
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    ranks = lambda a: stats.rankdata(a)  # noqa: E731
    assert spearman(x, y) == pytest.approx(np.corrcoef(ranks(x), ranks(y))[0, 1])
    for correlation in (pearson, spearman):  # undefined for constant predictions: NaN, said once
        with pytest.warns(RuntimeWarning, match="predictions are constant"):
            assert math.isnan(correlation(np.ones(5), np.arange(5)))


def test_task_metrics_names():
    assert set(shipped_task("sst").metrics(np.array([1, 2]), np.array([1, 3]))) == {"accuracy", "f1"}
    assert set(shipped_task("para").metrics(np.array([1, 0]), np.array([1, 1]))) == {"accuracy", "f1"}
    assert set(shipped_task("sts").metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 2.0]))) == {"pearson", "spearman"}
    assert math.isclose(shipped_task("sst").metrics(np.array([1, 2]), np.array([1, 3]))["accuracy"], 0.5)
