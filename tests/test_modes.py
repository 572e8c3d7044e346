"""Post-hoc sweeps, early-bird and IMP modes end to end on the tiny model."""

import mlflow
import pytest
import torch

from ticketbert import EarlyBirdPruner, load_pruned, sweep_sparsity
from ticketbert.models import load_tokenizer
from ticketbert.tasks.model import build_model
from ticketbert.models.compute import count_prunable
from ticketbert.pruning import criteria, make_calibration, plan, score
from ticketbert.pruning.early_bird import plan_distance
from ticketbert.run import encode_data, read_data, run_training
from ticketbert.tracking import Tracker
from ticketbert.training.device import use_bf16
from ticketbert.training.evaluate import evaluate


def test_sweep_sparsity_scores_once_and_logs_a_child_run_per_level(tiny_model, tiny_task_data, tiny_run_config,
                                                                     tokenizer, monkeypatch):
    calls = []
    original = criteria.CRITERIA["taylor"]
    class Counting(criteria.Taylor):
        def __call__(self, *args):
            calls.append(1)
            return original(*args)

    monkeypatch.setitem(criteria.CRITERIA, "taylor", Counting())
    tracker = Tracker(tiny_run_config.tracking.uri, "sweep-test")
    parent = tracker.start("parent")
    data = {"sts": tiny_task_data["sts"]}
    levels = [0.0, 0.2, 0.4]
    results = sweep_sparsity(tiny_model, data, levels, method="heads", criterion="taylor",
                             train=tiny_run_config.train, pad_id=tokenizer.pad_token_id, tracker=tracker,
                             parent_run_id=parent.run_id, tags={"task": "sts"}, calibration_examples=8)
    assert len(calls) == 1
    assert [r.sparsity for r in results] == levels
    assert results[0].metrics["achieved_sparsity"] == 0.0
    assert results[2].metrics["achieved_sparsity"] > results[1].metrics["achieved_sparsity"] > 0
    assert results[2].metrics["flops_per_token"] < results[0].metrics["flops_per_token"]
    runs = mlflow.MlflowClient(tracker.uri).search_runs(
        [tracker.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.run_id}'")
    assert len(runs) == 3
    for run in runs:
        assert run.data.tags["method"] == "heads" and run.data.tags["criterion"] == "taylor"
        for name in ("dev/pearson", "train/pearson", "achieved_sparsity", "params", "flops_per_token",
                     "latency_ms", "speedup"):
            assert name in run.data.metrics
    # the dense model is untouched
    assert all(n == 4 for n in [layer.attention.self.num_attention_heads for layer in tiny_model.encoder.encoder.layer])


def test_posthoc_trials_share_one_dense_fine_tune(tiny_run_config, tmp_path):
    fits = []
    import ticketbert.modes as modes
    original = modes.run_dense
    modes.run_dense = lambda *a, **k: fits.append(1) or original(*a, **k)
    try:
        for sparsity in (0.1, 0.3):
            config = tiny_run_config.model_copy(deep=True)
            config.prune.method, config.prune.sparsity, config.prune.criterion = "ffn", sparsity, "loss_increment"
            config.prune.dense_dir = tmp_path / "dense"
            config.prune.calibration_examples = 8
            result = run_training(config)
            assert result.metrics["achieved_sparsity"] == pytest.approx(sparsity, abs=0.01)
            assert "speedup" in result.metrics and "dev/accuracy" in result.metrics
    finally:
        modes.run_dense = original
    assert len(fits) == 1
    assert (tmp_path / "dense" / "scores" / "ffn-loss_increment.safetensors").is_file()


def test_plan_distance():
    scores = score(_bert(), "heads", "l1")
    a, b = plan(scores, 0.2), plan(scores, 0.4)
    assert plan_distance(a, a) == 0.0
    assert 0 < plan_distance(a, b) <= 1
    m1, m2 = plan(score(_bert(), "magnitude"), 0.5), plan(score(_bert(1), "magnitude"), 0.5)
    assert plan_distance(m1, m1) == 0.0 and plan_distance(m1, m2) > 0.3


def _bert(seed=0):
    from test_pruning import random_bert
    return random_bert(seed)


def test_early_bird_pruner_in_a_plain_loop():
    """Stepped from a hand-written loop: with weights that stop moving the mask settles."""
    model = _bert()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    pruner = EarlyBirdPruner("magnitude", 0.5, interval=2, window=2, epsilon=0.05)
    found_at = None
    for step in range(1, 41):
        out = model(input_ids=torch.randint(1000, 2000, (2, 8))).last_hidden_state
        out.pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        if pruner.step(model):
            found_at = step
            break
    assert found_at is not None and pruner.converged and pruner.distances[-1] < 0.05
    report = pruner.prune(model)
    assert report.achieved_sparsity == pytest.approx(0.5, abs=1e-3)
    restored = EarlyBirdPruner("magnitude", 0.5, interval=2, window=2, epsilon=0.05)
    restored.load_state_dict(pruner.state_dict())
    assert restored.found_at == found_at and plan_distance(restored.plan, pruner.plan) == 0


def test_early_bird_mode_prunes_and_resumes(tiny_run_config):
    config = tiny_run_config.model_copy(deep=True)
    config.train.epochs = 3
    config.prune.method, config.prune.sparsity, config.prune.mode, config.prune.criterion = "heads", 0.25, "early_bird", "l1"
    config.prune.early_bird_interval, config.prune.early_bird_window, config.prune.early_bird_max_steps = 1, 2, 4
    result = run_training(config)
    assert result.metrics["early_bird_step"] <= 4
    assert result.metrics["achieved_sparsity"] == pytest.approx(0.25, abs=0.01)
    assert result.metrics["total_train_flops"] > result.metrics["search_train_flops"] > 0
    assert result.metrics["final_seconds"] > 0 and result.metrics["search_seconds"] > 0
    reloaded = load_pruned(result.model_dir)
    assert sum(reloaded.encoder.config.ticketbert_structure["heads_per_layer"]) == 8 - 4  # heads: half of tiny BERT


def test_early_bird_without_a_ticket_prunes_with_the_last_mask_and_evaluates_the_pruned_model(tiny_run_config):
    """Training ends before the masks settle: the run prunes with the last mask and logs the
    PRUNED model's metrics (not the dense model's from the last epoch), the whole run as search."""
    config = tiny_run_config.model_copy(deep=True)
    config.train.epochs, config.train.tasks = 1, ["sts"]  # Pearson: any change of the model shows
    config.prune.method, config.prune.sparsity, config.prune.mode, config.prune.criterion = "heads", 0.5, "early_bird", "l1"
    config.prune.early_bird_interval, config.prune.early_bird_window, config.prune.early_bird_max_steps = 1, 50, 1000
    result = run_training(config)
    assert result.metrics["early_bird_converged"] == 0.0 and result.metrics["achieved_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert result.metrics["search_train_flops"] == result.metrics["total_train_flops"] > 0
    assert result.metrics["search_seconds"] > 0 and "final_seconds" not in result.metrics
    dense_last_epoch = result.history[-1]["dev/overall"]
    reloaded = load_pruned(result.model_dir)
    tokenizer = load_tokenizer(config.model.encoder)
    data = encode_data(config, read_data(config), tokenizer)
    cpu = torch.device("cpu")
    pruned = evaluate(reloaded, data, pad_id=tokenizer.pad_token_id, batch_size=config.train.eval_batch_size, device=cpu,
                      bf16=use_bf16(cpu, config.train.bf16))
    assert result.metrics["dev/overall"] == pytest.approx(pruned["dev/overall"], abs=1e-6)
    assert result.metrics["dev/overall"] != dense_last_epoch


def test_early_bird_flops_count_every_taylor_draw(tiny_run_config, tiny_task_data, tokenizer):
    """Mask draws under taylor cost calibration passes: the total counts them, draw by draw."""
    config = tiny_run_config.model_copy(deep=True)
    config.train.epochs, config.train.tasks = 2, ["sts"]
    config.prune.method, config.prune.sparsity, config.prune.mode, config.prune.criterion = "ffn", 0.2, "early_bird", "taylor"
    config.prune.early_bird_interval, config.prune.early_bird_max_steps, config.prune.calibration_examples = 2, 6, 8
    config.prune.early_bird_draws = "calibration"
    result = run_training(config)
    draws = int(result.metrics["early_bird_step"]) // 2
    calibration = make_calibration({"sts": tiny_task_data["sts"]}, 8, pad_id=tokenizer.pad_token_id)
    one_draw = score(build_model(config.model, config.train.tasks), "ffn", "taylor", calibration).flops
    assert one_draw > 0
    assert result.metrics["search_scoring_flops"] == pytest.approx(draws * one_draw)
    trained = result.metrics["total_train_flops"] - result.metrics["search_scoring_flops"]
    assert trained > result.metrics["search_train_flops"] > 0


def test_multitask_early_bird_draws_from_every_tasks_training_loss(tiny_run_config, monkeypatch):
    """Three tasks on one encoder (para and sts batches encode two segments per example): the
    fisher masks are summed from each task's training backward at no scoring cost, only the
    encoder is pruned, the task heads stay whole, and no gate is left on the model."""
    from ticketbert.pruning.training_draws import TrainingGates

    seen_tasks, gates = set(), []
    mark, init = TrainingGates._mark_forward, TrainingGates.__init__
    monkeypatch.setattr(TrainingGates, "__init__", lambda self, *a: gates.append(self) or init(self, *a))
    monkeypatch.setattr(TrainingGates, "_mark_forward",
                        lambda self, module, args, kwargs: seen_tasks.add(args[0]) or mark(self, module, args, kwargs))
    config = tiny_run_config.model_copy(deep=True)
    config.train.tasks = ["sst", "para", "sts"]
    config.prune.method, config.prune.sparsity, config.prune.mode, config.prune.criterion = "ffn", 0.3, "early_bird", "fisher"
    config.prune.early_bird_interval, config.prune.early_bird_window, config.prune.early_bird_max_steps = 2, 2, 8
    result = run_training(config)
    assert seen_tasks == {"sst", "para", "sts"}
    assert len(gates) == 1 and not gates[0].attached
    assert result.metrics["early_bird_step"] <= 8
    assert result.metrics["achieved_sparsity"] == pytest.approx(0.3, abs=0.02)
    assert result.metrics["search_scoring_flops"] == 0
    assert result.metrics["total_train_flops"] == result.metrics["train_flops"] > result.metrics["search_train_flops"]
    assert {"dev/sst/accuracy", "dev/para/accuracy", "dev/sts/pearson"} <= set(result.metrics)
    reloaded, dense = load_pruned(result.model_dir), build_model(config.model, config.train.tasks)
    assert {k: v.shape for k, v in reloaded.heads.state_dict().items()} == \
        {k: v.shape for k, v in dense.heads.state_dict().items()}
    widths = [layer.intermediate.dense.out_features for layer in reloaded.encoder.encoder.layer]
    assert sum(widths) < sum(layer.intermediate.dense.out_features for layer in dense.encoder.encoder.layer)


def test_training_draws_resumed_mid_search_end_where_a_straight_run_does(tiny_run_config, tiny_task_data, tokenizer,
                                                                         tmp_path):
    """A crash after epoch 1, during the search: the resumed run re-attaches the gates, restores
    the pruner's steps, distances and last mask, and (draws falling on the epoch's end, so no sums
    are lost) finds the same ticket and ends with the same weights as an uninterrupted run."""
    from ticketbert.training.callbacks import EarlyBirdHook
    from ticketbert.training.loop import Callback, fit, training_schedule

    data = {"sst": tiny_task_data["sst"]}
    train = tiny_run_config.train.model_copy(update={"epochs": 2, "tasks": ["sst"]})
    steps_per_epoch = len(training_schedule(data, train, 0))
    assert steps_per_epoch % 3 == 0

    class Crash(Exception):
        pass

    class CrashAfterFirstEpoch(Callback):
        def on_epoch_end(self, model, epoch, metrics):
            if epoch == 1:
                raise Crash

    def run(directory, *callbacks):
        torch.manual_seed(7)
        model = build_model(tiny_run_config.model, ["sst"])
        pruner = EarlyBirdPruner("ffn", 0.3, criterion="fisher", interval=3, max_steps=steps_per_epoch + 3,
                                 model=model)
        hook = EarlyBirdHook(pruner, search_lr_scale=2.0)
        return model, hook, fit(model, data, train, pad_id=tokenizer.pad_token_id, checkpoint_dir=directory,
                                callbacks=[hook, *callbacks])

    model, straight_hook, straight = run(tmp_path / "straight")
    with pytest.raises(Crash):
        run(tmp_path / "crash", CrashAfterFirstEpoch())
    resumed_model, resumed_hook, resumed = run(tmp_path / "crash")
    assert straight_hook.run.pruned_at == resumed_hook.run.pruned_at == steps_per_epoch + 3
    assert resumed_hook.pruner.distances == straight_hook.pruner.distances
    assert resumed_hook.pruner.plan.removed == straight_hook.pruner.plan.removed
    timeless = [{k: v for k, v in run.history[-1].items() if k != "epoch_seconds"} for run in (straight, resumed)]
    assert timeless[0] == pytest.approx(timeless[1])
    for (name, a), (_, b) in zip(model.state_dict().items(), resumed_model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_imp_mode_reaches_target_with_rewinding(tiny_run_config):
    config = tiny_run_config.model_copy(deep=True)
    config.train.epochs = 1
    config.prune.method, config.prune.sparsity, config.prune.mode, config.prune.imp_rounds = "magnitude", 0.6, "imp", 2
    result = run_training(config)
    assert result.metrics["achieved_sparsity"] == pytest.approx(0.6, abs=1e-3)
    assert len(result.history) == 3  # two pruning rounds + the final training
    model = load_pruned(result.model_dir)
    assert 1 - count_prunable(model.encoder) / count_prunable(model.encoder, nonzero=False) == pytest.approx(0.6, abs=1e-3)


def test_early_bird_pruning_mid_epoch_continues_the_run(tiny_run_config, tiny_task_data, tokenizer, tmp_path):
    """A ticket found mid-epoch: the same run goes on (steps, LR schedule, epochs), its FLOPs
    follow the model's size step by step, the search phase runs the schedule at its own height
    and the step after pruning at the run's, and a resume after pruning ends where a straight run does."""
    from ticketbert.data import collate
    from ticketbert.models.compute import attention_flops_per_token, linear_flops_per_token
    from ticketbert.training.callbacks import EarlyBirdHook
    from ticketbert.training.loop import Callback, fit, training_schedule

    class LearningRates(Callback):
        """The learning rate of step 1, then after every step the next step's."""

        def __init__(self):
            self.rates = []

        def on_train_begin(self, model, optimizer, scheduler):
            self.rates.append(optimizer.param_groups[0]["lr"])

        def on_step_end(self, model, step, optimizer, totals):
            self.rates.append(optimizer.param_groups[0]["lr"])

    data = {"sst": tiny_task_data["sst"]}
    train = tiny_run_config.train.model_copy(update={"epochs": 3, "tasks": ["sst"]})
    pad = tokenizer.pad_token_id
    steps_per_epoch = len(training_schedule(data, train, 0))
    assert steps_per_epoch >= 5

    def run(directory, callbacks):
        torch.manual_seed(7)
        model = build_model(tiny_run_config.model, ["sst"])
        dense_linear = linear_flops_per_token(model)
        return model, dense_linear, fit(model, data, train, pad_id=pad, checkpoint_dir=directory, callbacks=callbacks)

    def hook():
        return EarlyBirdHook(EarlyBirdPruner("ffn", 0.3, criterion="l1", interval=1, window=2, epsilon=1.0,
                                             max_steps=3), search_lr_scale=0.25)

    dense_rates, pruned_rates = LearningRates(), LearningRates()
    _, _, dense = run(tmp_path / "dense", [dense_rates])
    pruned_hook = hook()
    model, dense_linear, pruned = run(tmp_path / "pruned", [pruned_hook, pruned_rates])
    found = pruned_hook.run.pruned_at
    assert 1 < found < steps_per_epoch  # mid-epoch
    assert pruned.steps == dense.steps == 3 * steps_per_epoch and len(pruned.history) == 3
    assert pruned.history[-1]["lr"] == dense.history[-1]["lr"]  # one schedule, not restarted
    assert len(pruned_rates.rates) == len(dense_rates.rates) == pruned.steps + 1
    for step, (rate, dense_rate) in enumerate(zip(pruned_rates.rates, dense_rates.rates), start=1):
        assert rate == pytest.approx(dense_rate * (0.25 if step <= found else 1.0), rel=1e-12), step
    assert max(dense_rates.rates) > 0

    expected, step = 0.0, 0
    small_linear = linear_flops_per_token(model)
    assert small_linear < dense_linear
    for epoch in range(3):
        for _, indices in training_schedule(data, train, epoch):
            step += 1
            batch = collate(data["sst"].train, indices, pad)
            linear = dense_linear if step <= found else small_linear
            expected += 3 * batch.tokens * (linear + attention_flops_per_token(model, batch.input_ids.shape[1]))
    assert pruned.train_flops == pytest.approx(expected, rel=1e-9)

    class Crash(Exception):
        pass

    crashed = []

    class CrashAfterEpoch(Callback):  # a crash during epoch 2: the checkpoint of epoch 1 holds the pruned model
        def on_epoch_end(self, model, epoch, metrics):
            if epoch == 2 and not crashed:
                crashed.append(epoch)
                raise Crash

    with pytest.raises(Crash):
        run(tmp_path / "crash", [hook(), CrashAfterEpoch()])
    resumed_model, _, resumed = run(tmp_path / "crash", [hook(), CrashAfterEpoch()])
    assert resumed.steps == pruned.steps and resumed.train_flops == pytest.approx(pruned.train_flops)
    assert [h["dev/accuracy"] for h in resumed.history] == [h["dev/accuracy"] for h in pruned.history]
    for (name, a), (_, b) in zip(model.state_dict().items(), resumed_model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
