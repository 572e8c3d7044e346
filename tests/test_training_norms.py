"""Wanda in early-bird and IMP: input norms summed over the training steps' own forward passes
(``ticketbert.pruning.training_norms``), checked against norms computed directly from the
matrices' inputs, and the masks against a direct per-row selection."""

import pytest
import torch

import ticketbert
from conftest import tiny_config
from ticketbert.config import ConfigError, load_config
from ticketbert.models.compute import count_prunable, effective_weight, prunable_linears
from ticketbert.pruning import load_pruned
from ticketbert.pruning.training_norms import TrainingNorms
from ticketbert.run import run_training
from ticketbert.integrations.transformers import add_early_bird
from transformers import BertForSequenceClassification, Trainer, TrainingArguments


def classifier():
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config(num_labels=3, hidden_dropout_prob=0.0,
                                                     attention_probs_dropout_prob=0.0))


def batch(seed, size=4, length=9):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 2000, (size, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    mask[2, 3:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 3, (size,), generator=generator)}


def direct_norms(model, batches):
    """||X_j|| of every prunable matrix's inputs over the real tokens of ``batches``, from forward hooks."""
    linears = prunable_linears(model)
    sums = {name: torch.zeros(effective_weight(m).shape[1]) for name, m in linears.items()}
    current = {}

    def adder(name):
        def add(module, args, out):
            sums[name] += args[0][current["mask"].bool()].double().pow(2).sum(0).float()
        return add

    handles = [m.register_forward_hook(adder(name)) for name, m in linears.items()]
    try:
        with torch.no_grad():
            for b in batches:
                current["mask"] = b["attention_mask"]
                model(**b)
    finally:
        for h in handles:
            h.remove()
    return {f"{name}.weight": s.sqrt() for name, s in sums.items()}


def hooks(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_training_draw_equals_direct_norms_and_per_row_selection():
    """Steps at lr 0 (dropout off): the draw's scores are |W| x the norms over the trained
    batches' real tokens (evaluation forwards under no_grad not counted), its masks keep the top
    half of every row, the calibration draw on the same batches agrees, and the hooks leave."""
    model = classifier().train()
    before = hooks(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    pruner = ticketbert.EarlyBirdPruner("wanda", 0.5, interval=100, model=model)
    assert pruner.draws == "training" and hooks(model) > before
    trained = [batch(0), batch(1, size=3, length=7), batch(2)]
    for b in trained:
        model(**b).loss.backward()
        with torch.no_grad():
            model(**batch(9))  # evaluation: not counted
        optimizer.step()
        optimizer.zero_grad()
        pruner.step(model)
    scores = pruner.scores(model)
    expected = direct_norms(model, trained)
    for name, linear in prunable_linears(model).items():
        key = f"{name}.weight"
        torch.testing.assert_close(scores.values[key], linear.weight.abs() * expected[key][None, :], rtol=1e-5,
                                   atol=1e-7)
    masks = ticketbert.plan(scores, 0.5).masks
    for key, value in scores.values.items():
        top = value.topk(value.shape[1] // 2, dim=1).indices
        assert torch.equal(masks[key], torch.zeros_like(masks[key]).scatter_(1, top, True))
    calibration = ticketbert.EarlyBirdPruner("wanda", 0.5, draws="calibration", data=trained).scores(model)
    for key, value in calibration.values.items():
        torch.testing.assert_close(value, scores.values[key], rtol=1e-5, atol=1e-7)
    assert calibration.flops > 0 and scores.flops == 0
    pruner.detach()
    assert hooks(model) == before


def test_early_bird_wanda_finds_a_2_4_ticket_and_prunes():
    model = classifier().train()
    before = hooks(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with ticketbert.EarlyBirdPruner("wanda", None, pattern="2:4", interval=1, window=2, epsilon=0.5,
                                    max_steps=6, model=model) as pruner:
        for step in range(6):
            model(**batch(step)).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if pruner.step(model):
                break
        report = pruner.prune(model, optimizer=optimizer)
    assert pruner.found_at is not None and len(pruner.distances) >= 1
    assert report.achieved_sparsity == pytest.approx(0.5)
    for linear in prunable_linears(model).values():
        kept = effective_weight(linear).ne(0).reshape(linear.out_features, -1, 4).sum(-1)
        assert bool((kept <= 2).all())
    assert hooks(model) == before + len(prunable_linears(model))  # the masks' own: the norms' hooks are gone
    with pytest.raises(ValueError, match="no training step reached the pruner's hooks"):
        ticketbert.EarlyBirdPruner("wanda", 0.5, model=classifier()).scores(model)


def test_norms_carry_over_when_the_pruner_moves_to_a_copy_of_the_model():
    model = classifier().train()
    norms = TrainingNorms(model)
    model(**batch(0))
    tokens = norms.examples
    assert tokens == int(batch(0)["attention_mask"].sum())
    taken = norms.take()
    assert norms.examples == 0 and set(taken) == {f"{n}.weight" for n in prunable_linears(model)}
    with pytest.raises(ValueError, match="no training forward pass"):
        norms.take()
    norms.close()
    model(**batch(1))
    assert norms.examples == 0


def test_hugging_face_trainer_draws_wanda_tickets(tmp_path):
    """The Trainer's own forwards feed the norms (padding excluded); the ticket is pruned 2:4 and
    training finishes on the masked model."""
    model = classifier()
    rows = [{k: v[i] for k, v in batch(seed).items()} for seed in range(12) for i in range(4)]
    args = TrainingArguments(output_dir=str(tmp_path), num_train_epochs=2, per_device_train_batch_size=8,
                             learning_rate=1e-3, report_to="none", save_strategy="no", use_cpu=True,
                             disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=rows)
    pruner = ticketbert.EarlyBirdPruner("wanda", None, pattern="2:4", interval=2, window=2, epsilon=0.5,
                                        max_steps=8, model=model)
    callback = add_early_bird(trainer, pruner)
    trainer.train()
    assert callback.report is not None and pruner.found_at <= 8 and trainer.state.global_step == 12
    assert callback.report.achieved_sparsity == pytest.approx(0.5)
    assert all(bool((effective_weight(m) != 0).reshape(m.out_features, -1, 4).sum(-1).le(2).all())
               for m in prunable_linears(model).values())


@pytest.mark.parametrize("overrides,message", [
    (["prune.method=sparsegpt", "prune.mode=early_bird"], "the update would be thrown away"),
    (["prune.method=sparsegpt", "prune.mode=imp"], "IMP rewinds them"),
    (["prune.method=heads", "prune.criterion=l1", "prune.mode=early_bird", "prune.early_bird_draws=training"],
     "criterion must be taylor, fisher, fisher_batch, activation"),
])
def test_mode_errors_say_why(overrides, message):
    with pytest.raises(ConfigError) as raised:
        load_config(None, overrides)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(ValueError, match="not 'early_bird'"):
        ticketbert.EarlyBirdPruner("sparsegpt", 0.5)


def test_early_bird_and_imp_modes_run_wanda(tiny_run_config):
    config = tiny_run_config.model_copy(deep=True)
    config.train.epochs = 2
    p = config.prune
    p.method, p.sparsity, p.mode, p.scope = "wanda", 0.5, "early_bird", None
    p.early_bird_interval, p.early_bird_window, p.early_bird_max_steps = 1, 2, 3
    result = run_training(config)
    assert result.metrics["early_bird_step"] <= 3
    assert result.metrics["achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)

    config = tiny_run_config.model_copy(deep=True)
    config.train.epochs = 1
    config.prune.method, config.prune.sparsity, config.prune.mode, config.prune.imp_rounds = "wanda", 0.6, "imp", 2
    result = run_training(config)
    achieved = result.metrics["achieved_sparsity"]
    assert achieved == pytest.approx(0.6, abs=1 / 32)  # per row: 19 of tiny BERT's 32 (or 64) inputs
    model = load_pruned(result.model_dir)
    assert 1 - count_prunable(model.encoder) / count_prunable(model.encoder, nonzero=False) == pytest.approx(achieved)
