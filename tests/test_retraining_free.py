"""Retraining-free structured pruning (issue 9): the Fisher criterion, the joint heads+FFN
budget, least-squares repair and distilled recovery, against independent computations."""

import copy
import itertools

import pytest
import torch

from conftest import tiny_config
from ticketbert.data import collate
from ticketbert.models.families import find_encoder
from ticketbert.pruning import Calibration, make_calibration, score
from ticketbert.pruning.calibration import task_loss
from ticketbert.pruning.units import UNIT_KINDS


def direct_fisher(model, task, split, indices, pad_id, kind):
    """Sum over examples of (d loss_example / d gate)^2, one example (one autograd call) at a time."""
    encoder = find_encoder(model)
    unit = UNIT_KINDS[kind]
    totals = [torch.zeros(n, dtype=torch.float64) for n in unit.counts(encoder)]
    with unit.gates(encoder, requires_grad=True) as gates:
        for index in indices:
            loss = task_loss(model, (task, collate(split, [index], pad_id)))
            for total, grad in zip(totals, torch.autograd.grad(loss, gates)):
                total += grad.double().pow(2)
    return totals


@pytest.mark.parametrize("kind", ["heads", "ffn", "layers"])
@pytest.mark.parametrize("task", ["sst", "sts", "para"])  # sts and para: bi-encoder batches of two segments
def test_fisher_equals_per_example_autograd(tiny_model, tiny_task_data, tokenizer, task, kind):
    model = tiny_model.double()
    pad = tokenizer.pad_token_id
    split = tiny_task_data[task].train
    indices = list(range(7))
    batches = [(task, collate(split, indices[:4], pad)), (task, collate(split, indices[4:], pad))]
    assert batches[0][1].segments == (1 if task == "sst" else 2)
    fisher = score(model, kind, "fisher", Calibration(batches, task_loss)).values
    expected = direct_fisher(model, task, split, indices, pad, kind)
    for got, want in zip(fisher, expected):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-12)
    # the per-mini-batch variant: batch size x squared gradient of the batch's mean loss
    batch_fisher = score(model, kind, "fisher_batch", Calibration(batches, task_loss)).values
    encoder, unit = find_encoder(model), UNIT_KINDS[kind]
    want = [torch.zeros(n, dtype=torch.float64) for n in unit.counts(encoder)]
    with unit.gates(encoder, requires_grad=True) as gates:
        for batch in batches:
            for total, grad in zip(want, torch.autograd.grad(task_loss(model, batch), gates)):
                total += grad.double().pow(2) * batch[1].labels.numel()
    for got, w in zip(batch_fisher, want):
        torch.testing.assert_close(got.double(), w, rtol=1e-5, atol=1e-12)


def test_fisher_counts_its_passes(tiny_model, tiny_task_data, tokenizer):
    calibration = make_calibration(tiny_task_data, 8, pad_id=tokenizer.pad_token_id)
    fisher, taylor = (score(tiny_model, "ffn", c, calibration) for c in ("fisher", "taylor"))
    assert fisher.flops == taylor.flops > 0
