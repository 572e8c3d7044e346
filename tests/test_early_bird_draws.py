"""Early-bird mask draws from the training step's own backward (``draws="training"``) on a tiny
Hugging Face BERT: the sums equal the criteria's over the same batches, the gates change nothing
in training, and they leave the model when the pruner is done."""

import copy

import pytest
import torch

import ticketbert
from conftest import tiny_config
from ticketbert.models.families import find_encoder
from ticketbert.pruning import Calibration
from ticketbert.pruning.criteria import get_criterion
from ticketbert.pruning.units import UNIT_KINDS
from transformers import BertForSequenceClassification


def classifier(dropout=0.0):
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config(num_labels=3, hidden_dropout_prob=dropout,
                                                     attention_probs_dropout_prob=dropout))


def batch(seed, size=4):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 2000, (size, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 3, (size,), generator=generator)}


def hook_count(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("method", ["heads", "ffn", "layers"])
@pytest.mark.parametrize("criterion", ["fisher", "taylor", "fisher_batch"])
def test_training_sums_equal_the_criterion_on_the_trained_batches(method, criterion):
    """Steps at lr 0 (weights fixed), one of them with two accumulated micro-batches (loss / 2),
    an evaluation forward and a forward without backward in between: the draw's scores equal
    the criterion computed independently on the trained batches as calibration data."""
    model = classifier().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    pruner = ticketbert.EarlyBirdPruner(method, 0.25, criterion=criterion, interval=100, model=model)
    assert pruner.draws == "training"
    steps = [[batch(0)], [batch(1), batch(2)], [batch(3)]]
    for micro in steps:
        for b in micro:
            (model(**b).loss / len(micro)).backward()
        with torch.no_grad():
            model(**batch(9))  # evaluation: no gates captured
        model(**batch(8))  # a forward whose loss is never back-propagated: not counted
        optimizer.step()
        optimizer.zero_grad()
        pruner.step(model)
    scores = pruner.scores(model)
    encoder = find_encoder(model)
    expected = get_criterion(criterion)(model, encoder, UNIT_KINDS[method],
                                        Calibration([b for micro in steps for b in micro]))
    scale = max(float(e.abs().max()) for e in expected)
    assert scale > 0
    for got, want in zip(scores.values, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6 * scale)
    assert scores.flops == 0 and pruner.scoring_flops == 0
    assert pruner.gates.examples == 0  # a draw consumes what it read


def train(model, steps, pruner=None, bf16=False):
    """Losses of ``steps`` AdamW steps on fixed batches (the pruner stepped after each)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for step in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch(step)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.detach())
        if pruner is not None:
            pruner.step(model)
    return losses


@pytest.mark.parametrize("method", ["heads", "ffn", "layers"])
def test_gates_leave_training_unchanged_bit_for_bit(method):
    plain, gated = classifier(dropout=0.1).train(), classifier(dropout=0.1).train()
    pruner = ticketbert.EarlyBirdPruner(method, 0.25, criterion="fisher", interval=2, window=5, model=gated)
    torch.manual_seed(3)
    expected = train(plain, 5)
    torch.manual_seed(3)
    got = train(gated, 5, pruner)
    assert len(pruner.distances) == 1  # draws happened (at steps 2 and 4) while training
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    for (name, a), (_, b) in zip(plain.state_dict().items(), gated.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("method", ["heads", "ffn"])
def test_gated_activations_stay_bf16_under_autocast(method):
    model = classifier().train()
    reference = copy.deepcopy(model)
    pruner = ticketbert.EarlyBirdPruner(method, 0.25, criterion="fisher", interval=100, model=model)
    encoder = find_encoder(model)
    seen = []
    projection = UNIT_KINDS[method].output_projection(encoder, 0)
    projection.register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))  # after the gate's hook
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(**batch(0)).logits
        with torch.no_grad():
            expected = reference(**batch(0)).logits
    assert seen == [torch.bfloat16] and logits.dtype == torch.bfloat16
    assert torch.equal(logits.detach(), expected)
    train(model, 1, pruner, bf16=True)
    sums = pruner.scores(model).values
    assert all(torch.isfinite(s).all() for s in sums) and sum(float(s.sum()) for s in sums) > 0


def test_gates_leave_the_model_when_the_pruner_is_done():
    model = classifier().train()
    before = hook_count(model)
    pruner = ticketbert.EarlyBirdPruner("ffn", 0.3, criterion="taylor", interval=2, window=2, epsilon=1.0, model=model)
    assert hook_count(model) > before
    train(model, 6, pruner)
    assert pruner.found and hook_count(model) == before  # found: gates off, even before prune()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    report = pruner.prune(model, optimizer=optimizer)
    assert report.achieved_sparsity == pytest.approx(0.3, abs=0.02) and hook_count(model) == before
    restored = ticketbert.EarlyBirdPruner("ffn", 0.3, criterion="taylor", interval=2, window=2, epsilon=1.0)
    restored.load_state_dict(pruner.state_dict())
    assert restored.state_dict().keys() == pruner.state_dict().keys()
    assert (restored.found_at, restored.distances, restored.plan.removed) == (pruner.found_at, pruner.distances,
                                                                               pruner.plan.removed)

    other = classifier().train()
    failing = ticketbert.EarlyBirdPruner("ffn", 0.3, criterion="fisher", interval=1, model=other)
    with pytest.raises(ValueError, match="no training step reached the pruner.s hooks"):
        failing.step(other)  # a step without any backward
    assert hook_count(other) == before
    with ticketbert.EarlyBirdPruner("heads", 0.25, criterion="fisher", model=other):
        assert hook_count(other) > before
    assert hook_count(other) == before


def test_draws_are_checked_up_front():
    with pytest.raises(ValueError, match="draws='training' sums gate gradients .* got 'l1'"):
        ticketbert.EarlyBirdPruner("ffn", 0.3, criterion="l1", draws="training")
    with pytest.raises(ValueError, match="draws='training' .* got 'l1'"):
        ticketbert.EarlyBirdPruner("magnitude", 0.3, draws="training")
    with pytest.raises(ValueError, match="draws='training' .* got 'loss_increment'"):
        ticketbert.EarlyBirdPruner("layers", 0.3, draws="training")
    with pytest.raises(ValueError, match="draws must be one of auto, training, calibration, got 'train'"):
        ticketbert.EarlyBirdPruner("ffn", 0.3, draws="train")
    assert ticketbert.EarlyBirdPruner("ffn", 0.3, criterion="l1").draws == "weights"
    assert ticketbert.EarlyBirdPruner("layers", 0.3, data=[batch(0)]).draws == "calibration"
