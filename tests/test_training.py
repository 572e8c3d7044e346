"""The loop learns, is deterministic, and resumes from a checkpoint to the same result."""

import pytest
import torch

from ticketbert.tasks.model import build_model
from ticketbert.training.checkpoint import has_checkpoint
from ticketbert.training.device import autocast, native_bf16, seed_everything, use_bf16
from ticketbert.training.loop import Callback, build_optimizer, fit, training_schedule


def _model(config):
    seed_everything(config.train.seed)
    return build_model(config.model, config.train.tasks)


def test_schedule_round_robin_and_proportional(tiny_run_config, tiny_task_data):
    train = tiny_run_config.train.model_copy(update={"tasks": ["sst", "para", "sts"]})
    steps = training_schedule(tiny_task_data, train, epoch=0)
    assert [t for t, _ in steps[:3]] == ["sst", "para", "sts"]
    for name, data in tiny_task_data.items():
        seen = sorted(i for t, b in steps if t == name for i in b)
        assert seen == list(range(len(data.train)))
    proportional = training_schedule(tiny_task_data, train.model_copy(update={"sampling": "proportional"}), 0)
    assert sorted(map(str, proportional)) == sorted(map(str, steps))
    assert training_schedule(tiny_task_data, train, 1) != steps


def test_multitask_fit_learns_and_logs_every_metric(tiny_run_config, tiny_task_data, tokenizer):
    config = tiny_run_config.model_copy(deep=True)
    config.train.tasks = ["sst", "para", "sts"]
    config.train.epochs = 3
    model = _model(config)
    result = fit(model, tiny_task_data, config.train, pad_id=tokenizer.pad_token_id)
    assert len(result.history) == 3
    first, last = result.history[0], result.history[-1]
    for split in ("dev", "train"):
        for name in ("sst/accuracy", "sst/f1", "para/accuracy", "para/f1", "sts/pearson", "sts/spearman",
                     "sst/loss", "overall"):
            assert f"{split}/{name}" in last
    assert last["train/sst/loss"] < first["train/sst/loss"]
    expected_overall = (last["dev/sst/accuracy"] + last["dev/para/accuracy"] + last["dev/sts/pearson"]) / 3
    assert abs(last["dev/overall"] - expected_overall) < 1e-9
    assert result.train_flops > 0 and result.steps == 3 * len(training_schedule(tiny_task_data, config.train, 0))


def test_resume_after_interruption_gives_the_same_result(tiny_run_config, tiny_task_data, tokenizer, tmp_path):
    config = tiny_run_config.model_copy(deep=True)
    config.train.tasks = ["sst", "sts"]
    config.train.epochs = 3
    data = {k: tiny_task_data[k] for k in config.train.tasks}
    pad = tokenizer.pad_token_id

    straight = _model(config)
    reference = fit(straight, data, config.train, pad_id=pad, checkpoint_dir=tmp_path / "a")

    interrupted = _model(config)
    fit(interrupted, data, config.train, pad_id=pad, checkpoint_dir=tmp_path / "b", epochs=3,
        callbacks=[_StopAfterEpoch(2)])
    assert has_checkpoint(tmp_path / "b")
    torch.manual_seed(12345)  # a new process has other RNG state: the checkpoint must restore it
    resumed = _model(config)
    result = fit(resumed, data, config.train, pad_id=pad, checkpoint_dir=tmp_path / "b")

    timeless = lambda history: [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in history]  # noqa: E731
    assert timeless(result.history) == timeless(reference.history)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_bf16_setting_resolves_per_device():
    cpu = torch.device("cpu")
    flags = torch.cpu.get_capabilities()
    assert native_bf16(cpu) == any(flags.get(f, False) for f in ("avx512_bf16", "amx_bf16", "sve_bf16"))
    assert use_bf16(cpu, "auto") == native_bf16(cpu)
    assert use_bf16(cpu, True) and not use_bf16(cpu, False)
    layer, x = torch.nn.Linear(4, 4), torch.randn(2, 4)
    with autocast(cpu, True):
        assert layer(x).dtype == torch.bfloat16
    with autocast(cpu, False):
        assert layer(x).dtype == torch.float32


def test_bf16_training_tracks_fp32_closely(tiny_run_config, tiny_task_data, tokenizer):
    """Same seed, same data: bf16 autocast changes the numbers a little, not the learning."""
    config = tiny_run_config.model_copy(deep=True)
    config.train.tasks, config.train.epochs = ["sst"], 2
    data = {"sst": tiny_task_data["sst"]}
    losses = {}
    for bf16 in (False, True):
        config.train.bf16 = bf16
        history = fit(_model(config), data, config.train, pad_id=tokenizer.pad_token_id).history
        losses[bf16] = [h["train/loss"] for h in history]
    assert losses[True] != losses[False]
    assert losses[True][-1] < losses[True][0]
    for a, b in zip(losses[True], losses[False]):
        assert abs(a - b) < 0.05 * abs(b)


def test_fused_optimizer_matches_the_reference_adamw(tiny_run_config):
    """build_optimizer's fused AdamW takes the same steps as torch's per-tensor AdamW."""
    models = [_model(tiny_run_config).eval() for _ in range(2)]
    fused = build_optimizer(models[0], tiny_run_config.train)
    assert fused.defaults["fused"]
    reference = torch.optim.AdamW(_same_groups(fused, models), lr=tiny_run_config.train.lr, fused=False)
    inputs = torch.randint(5, 90, (4, 7))
    for _ in range(3):  # the same gradients for both: the optimizers alone differ
        models[0].encoder(input_ids=inputs).last_hidden_state.pow(2).mean().backward()
        for a, b in zip(models[0].parameters(), models[1].parameters()):
            b.grad = None if a.grad is None else a.grad.clone()
        for optimizer in (fused, reference):
            optimizer.step()
            optimizer.zero_grad()
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    untrained = _model(tiny_run_config).encoder.embeddings.word_embeddings.weight
    assert not torch.equal(models[0].encoder.embeddings.word_embeddings.weight, untrained)  # the steps moved it


def _same_groups(optimizer, models):
    """``optimizer``'s parameter groups (weight decay per group) over the second model's parameters."""
    position = {id(p): i for i, p in enumerate(models[0].parameters())}
    params = list(models[1].parameters())
    return [{"params": [params[position[id(p)]] for p in group["params"]], "weight_decay": group["weight_decay"]}
            for group in optimizer.param_groups]


class _StopAfterEpoch(Callback):
    """Simulates a crash after ``epoch`` epochs (the loop stops before the next one)."""

    def __init__(self, epoch):
        self.epoch, self.should_stop = epoch, False

    def on_epoch_end(self, model, epoch, metrics):
        self.should_stop = epoch >= self.epoch


def test_learning_rate_scale_keeps_the_schedule_and_survives_a_resume():
    """set_lr_scale runs the same warm-up/decay at another height from the next step on; setting
    it again after restoring a checkpoint changes nothing; scale 1 gives the plain schedule back."""
    from transformers import get_linear_schedule_with_warmup

    from ticketbert.pruning.lr_scale import set_lr_scale

    def schedule():
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        return optimizer, get_linear_schedule_with_warmup(optimizer, 2, 10)

    def rates(optimizer, scheduler, steps):
        out = []
        for _ in range(steps):
            optimizer.step()
            scheduler.step()
            out.append(optimizer.param_groups[0]["lr"])
        return out

    plain = rates(*schedule(), 10)
    optimizer, scheduler = schedule()
    set_lr_scale(optimizer, scheduler, 0.5)
    searched = rates(optimizer, scheduler, 4)
    resumed_optimizer, resumed_scheduler = schedule()
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed_scheduler.load_state_dict(scheduler.state_dict())
    set_lr_scale(resumed_optimizer, resumed_scheduler, 0.5)  # a resumed run sets its scale again
    searched += rates(resumed_optimizer, resumed_scheduler, 2)
    set_lr_scale(resumed_optimizer, resumed_scheduler, 1.0)
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(plain[5])
    after = rates(resumed_optimizer, resumed_scheduler, 4)
    assert searched == pytest.approx([0.5 * r for r in plain[:6]], rel=1e-12)
    assert after == plain[6:]
    plateau_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(plateau_optimizer)
    with pytest.raises(ValueError, match="ReduceLROnPlateau has none"):
        set_lr_scale(plateau_optimizer, plateau, 0.5)
