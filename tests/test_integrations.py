"""The Hugging Face Trainer with an early-bird callback, on a tiny random BERT."""

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from transformers import BertForSequenceClassification, Trainer, TrainingArguments

import ticketbert
from conftest import tiny_config
from ticketbert.integrations.transformers import EarlyBirdCallback, add_early_bird


def classifier():
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config(num_labels=2))


def dataset(size=96):
    generator = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(size):
        ids = torch.randint(1000, 1100, (8,), generator=generator)
        rows.append({"input_ids": ids, "attention_mask": torch.ones(8, dtype=torch.long),
                     "labels": int(ids[0] < 1050)})
    return rows


def trainer_for(model, tmp_path, **overrides):
    settings = dict(output_dir=str(tmp_path / "out"), num_train_epochs=2, per_device_train_batch_size=8,
                    learning_rate=1e-3, logging_steps=5, report_to="none", save_strategy="no",
                    use_cpu=True, disable_tqdm=True)
    settings.update(overrides)
    return Trainer(model=model, args=TrainingArguments(**settings), train_dataset=dataset())


def test_callback_finds_prunes_and_training_finishes(tmp_path):
    model = classifier()
    pruner = ticketbert.EarlyBirdPruner("ffn", 0.4, criterion="l1", interval=2, window=2, epsilon=0.2,
                                        max_steps=10, model=model)
    trainer = trainer_for(model, tmp_path)
    callback = add_early_bird(trainer, pruner)
    trainer.train()
    assert callback.report is not None and pruner.found_at <= 10
    assert trainer.state.global_step == 24  # 96 examples / 8 x 2 epochs: nothing restarted
    widths = [layer.intermediate.dense.out_features for layer in model.bert.encoder.layer]
    assert sum(widths) < 128
    logged = {k for entry in trainer.state.log_history for k in entry}
    assert {"early_bird/mask_distance", "early_bird_step", "achieved_sparsity", "flops_per_token"} <= logged
    trainer.save_model(str(tmp_path / "pruned"))
    reloaded = ticketbert.load_pruned(tmp_path / "pruned")
    assert type(reloaded) is BertForSequenceClassification
    batch = {k: torch.stack([row[k] for row in dataset(4)]) for k in ("input_ids", "attention_mask")}
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits, atol=1e-5, rtol=1e-5)


def test_callback_warns_when_training_ends_without_a_ticket(tmp_path):
    model = classifier()
    pruner = ticketbert.EarlyBirdPruner("ffn", 0.4, criterion="l1", interval=2, window=50, model=model)
    trainer = trainer_for(model, tmp_path, num_train_epochs=1)
    add_early_bird(trainer, pruner)
    with pytest.warns(UserWarning, match="no ticket after 12 steps.*NOT pruned"):
        trainer.train()
    assert [layer.intermediate.dense.out_features for layer in model.bert.encoder.layer] == [64, 64]


def test_callback_draws_from_the_trainers_backward_at_the_search_learning_rate(tmp_path):
    """fisher masks summed from the Trainer's own backward passes (two accumulated micro-batches
    per step), no scoring FLOPs; the schedule runs at search_lr until the ticket, then at the
    Trainer's own rate; no gate is left on the model."""
    from transformers import TrainerCallback

    class LearningRates(TrainerCallback):
        def __init__(self):
            self.rates = {}

        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            self.rates[state.global_step] = optimizer.param_groups[0]["lr"]

    model = classifier()
    trainer = trainer_for(model, tmp_path, gradient_accumulation_steps=2, warmup_steps=2)
    hooks = sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())
    pruner = ticketbert.EarlyBirdPruner("ffn", 0.4, criterion="fisher", interval=2, window=2, epsilon=1.0,
                                        max_steps=6, model=model)
    assert pruner.draws == "training"
    callback = add_early_bird(trainer, pruner, search_lr=4e-3)
    rates = LearningRates()
    trainer.add_callback(rates)
    trainer.train()
    assert callback.report is not None and pruner.found_at == 6 and trainer.state.global_step == 12
    assert callback.report.achieved_sparsity == pytest.approx(0.4, abs=0.02)
    assert pruner.scoring_flops == 0
    logged = {k: v for entry in trainer.state.log_history for k, v in entry.items()}
    assert logged["search_scoring_flops"] == 0
    assert sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules()) == hooks
    shape = trainer.lr_scheduler.lr_lambdas[0]
    assert sorted(rates.rates) == list(range(1, 13))
    for step, rate in rates.rates.items():
        assert rate == pytest.approx((4e-3 if step < pruner.found_at else 1e-3) * shape(step), rel=1e-12), step


def test_report_to_mlflow_carries_the_mask_distances(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)  # the Trainer keeps a URI another test may have set in this process
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "trainer-early-bird")
    model = classifier()
    pruner = ticketbert.EarlyBirdPruner("heads", 0.25, criterion="l1", interval=2, window=2, epsilon=0.3,
                                        max_steps=8, model=model)
    trainer = trainer_for(model, tmp_path, report_to="mlflow", num_train_epochs=1)
    add_early_bird(trainer, pruner)
    trainer.train()
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("trainer-early-bird").experiment_id])[0]
    distances = client.get_metric_history(run.info.run_id, "early_bird/mask_distance")
    assert [m.value for m in distances] == pytest.approx(pruner.distances)
    assert [m.step for m in distances] == pruner.distance_steps
    assert run.data.metrics["early_bird_step"] == pruner.found_at


def test_callback_rejects_a_sparsity_the_model_cannot_reach_before_training(tmp_path):
    model = classifier()
    pruner = ticketbert.EarlyBirdPruner("heads", 0.6, criterion="l1")  # no model: checked at train begin
    trainer = trainer_for(model, tmp_path)
    trainer.add_callback(EarlyBirdCallback(pruner))
    weights = model.bert.encoder.layer[0].intermediate.dense.weight.clone()
    with pytest.raises(ValueError, match="can remove at most 50.0% of this model's prunable weights, asked for 60.0%"):
        trainer.train()
    assert torch.equal(model.bert.encoder.layer[0].intermediate.dense.weight, weights)
    with pytest.raises(TypeError, match="needs a ticketbert.EarlyBirdPruner"):
        EarlyBirdCallback("heads")


def test_trainer_resumes_from_checkpoints_before_and_after_the_ticket(tmp_path):
    """The search's state travels in the Trainer's checkpoints: resumed before the ticket, the
    ticket is found where the straight run found it; resumed after it, the model is pruned
    first and training finishes; both end where the straight run ended."""
    def train(out, checkpoint=None):
        model = classifier()
        pruner = ticketbert.EarlyBirdPruner("ffn", 0.4, criterion="l1", interval=2, window=2, epsilon=1.0,
                                            max_steps=8, model=model)
        trainer = trainer_for(model, tmp_path, output_dir=str(tmp_path / out), save_strategy="steps", save_steps=4)
        callback = add_early_bird(trainer, pruner, resume_from_checkpoint=checkpoint)
        trainer.train(resume_from_checkpoint=checkpoint)
        return model, pruner, trainer, callback

    straight, straight_pruner, straight_trainer, _ = train("straight")
    assert straight_pruner.found_at == 6
    widths = [layer.intermediate.dense.out_features for layer in straight.bert.encoder.layer]
    batch = {k: torch.stack([row[k] for row in dataset(4)]) for k in ("input_ids", "attention_mask")}
    straight.eval()
    with torch.no_grad():
        expected = straight(**batch).logits
    for step in (4, 8):  # before and after the ticket
        checkpoint = tmp_path / "straight" / f"checkpoint-{step}"
        assert (checkpoint / "early_bird.pt").is_file()
        model, pruner, trainer, callback = train(f"resumed-{step}", checkpoint)
        assert pruner.found_at == 6 and callback.run.pruned_at == 6 and trainer.state.global_step == 24
        assert [layer.intermediate.dense.out_features for layer in model.bert.encoder.layer] == widths
        trainer.save_model(str(tmp_path / f"pruned-{step}"))
        reloaded = ticketbert.load_pruned(tmp_path / f"pruned-{step}").eval()
        with torch.no_grad():
            torch.testing.assert_close(reloaded(**batch).logits, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(FileNotFoundError, match="no early-bird state in this checkpoint"):
        add_early_bird(trainer_for(classifier(), tmp_path), straight_pruner, resume_from_checkpoint=tmp_path)
