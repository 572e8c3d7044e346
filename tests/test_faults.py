"""Faults survived: non-finite losses stop cleanly, random states round-trip through checkpoints,
SIGTERM is handled like SIGINT, and no MLflow run is left RUNNING after an error."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from ticketbert.tasks.model import build_model
from ticketbert.pruning import save_pruned
from ticketbert.training.checkpoint import checkpoint_state, has_checkpoint, save_checkpoint
from ticketbert.training.device import random_states, set_random_states
from ticketbert.training.loop import NonFiniteLoss, fit, training_schedule

ROOT = Path(__file__).resolve().parents[1]


def tiny_overrides(encoder: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [f"model.encoder={encoder}", "data.source=synthetic", "data.synthetic_examples=48",
            "data.train_eval_examples=16", "train.lr=1e-3", "train.progress=false",
            "train.batch_size={sst: 8, para: 8, sts: 8}", f"output_dir={tmp_path / 'runs'}",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", *extra]


def runs_of(tmp_path: Path, experiment: str = "ticketbert") -> list:
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id])


def draws() -> tuple:
    return torch.rand(4).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_every_random_state_round_trips_through_a_checkpoint(tmp_path):
    torch.manual_seed(3), np.random.seed(4), random.seed(5)
    np.random.normal()  # numpy's cached Gaussian is part of its state
    save_checkpoint(tmp_path / "c", torch.nn.Linear(2, 2), {"rng": random_states()})
    expected = draws()
    torch.manual_seed(99), np.random.seed(99), random.seed(99)  # a new process: other states
    set_random_states(checkpoint_state(tmp_path / "c")["rng"])
    assert draws() == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_random_states_round_trip(tmp_path):
    torch.cuda.manual_seed_all(7)
    save_checkpoint(tmp_path / "c", torch.nn.Linear(2, 2), {"rng": random_states()})
    expected = torch.rand(5, device="cuda").tolist()
    torch.cuda.manual_seed_all(99)
    set_random_states(checkpoint_state(tmp_path / "c")["rng"])
    assert torch.rand(5, device="cuda").tolist() == expected


def test_a_save_interrupted_between_its_two_renames_keeps_the_previous_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "c", torch.nn.Linear(2, 2), {"epoch": 1})
    (tmp_path / "c").rename(tmp_path / "c.old")  # where an interrupt can leave a save: old moved aside
    assert has_checkpoint(tmp_path / "c") and checkpoint_state(tmp_path / "c")["epoch"] == 1


def test_a_checkpoint_with_only_the_cpu_state_still_resumes(tmp_path):
    torch.manual_seed(3)
    state = torch.get_rng_state()
    expected = torch.rand(3).tolist()
    set_random_states(state)
    assert torch.rand(3).tolist() == expected


class PoisonAt:
    """The task loss, made non-finite (or its gradient) from training step ``step`` on."""

    def __init__(self, task, step: int, gradient: bool = False):
        self.task, self.step, self.gradient, self.calls = task, step, gradient, 0

    def __call__(self, model, task_name, batch):
        self.calls += 1
        loss = self.task.loss(model(task_name, batch), batch.labels)
        if self.calls < self.step:
            return loss
        if self.gradient:  # finite loss, NaN gradient: d sqrt(x)/dx at 0 is inf, times 0
            weight = next(model.parameters())
            return loss + (weight.sum() * 0).sqrt()
        return loss * float("nan")


@pytest.mark.parametrize("gradient", [False, True], ids=["loss", "gradient"])
def test_non_finite_loss_stops_at_once_and_keeps_the_last_checkpoint(gradient, tiny_run_config, tiny_task_data,
                                                                      tokenizer, tmp_path):
    config = tiny_run_config.model_copy(deep=True)
    data = {"sst": tiny_task_data["sst"]}
    torch.manual_seed(0)
    model = build_model(config.model, ["sst"])
    per_epoch = len(training_schedule(data, config.train, 0))
    poison = PoisonAt(data["sst"].task, per_epoch + 2, gradient)
    with pytest.raises(NonFiniteLoss) as raised:
        fit(model, data, config.train, pad_id=tokenizer.pad_token_id, checkpoint_dir=tmp_path / "ckpt", epochs=3,
            batch_loss=poison)
    message = str(raised.value)
    what = "gradient norm" if gradient else "loss"
    assert f"non-finite {what} at step {per_epoch + 2} (epoch 2)" in message and "lower train.lr" in message
    assert "last finite loss none" not in message and "\n" not in message
    assert has_checkpoint(tmp_path / "ckpt") and checkpoint_state(tmp_path / "ckpt")["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the poisoned step was not applied


def test_train_command_reports_a_non_finite_loss_and_marks_the_run_failed(tiny_encoder_dir, tmp_path, monkeypatch,
                                                                          capsys):
    from ticketbert.tasks.task import Task
    from ticketbert.train import main

    real_loss = Task.loss
    calls = []

    def diverging(self, outputs, labels):  # finite for the first epoch's 6 steps, then NaN (training only)
        loss = real_loss(self, outputs, labels)
        if torch.is_grad_enabled():
            calls.append(1)
            return loss * float("nan") if len(calls) > 6 else loss
        return loss

    monkeypatch.setattr(Task, "loss", diverging)
    assert main(tiny_overrides(tiny_encoder_dir, tmp_path, "train.epochs=3")) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and errors[0].startswith("error: non-finite loss at step 7 (epoch 2); last finite loss")
    (run,) = runs_of(tmp_path)
    assert run.info.status == "FAILED"
    assert not any(np.isnan(v) for v in run.data.metrics.values())  # only the finished epoch was logged
    assert len(list((tmp_path / "runs").glob("*/checkpoint/trainer_state.pt"))) == 1


@pytest.mark.parametrize("error, status, code", [(RuntimeError("boom"), "FAILED", None),
                                                 (KeyboardInterrupt(), "KILLED", 130)])
def test_posthoc_leaves_no_run_running(error, status, code, tiny_encoder_dir, tmp_path, monkeypatch):
    import ticketbert.measure
    from ticketbert.config import ModelConfig
    from ticketbert.posthoc import main

    model_dir = save_pruned(build_model(ModelConfig(encoder=str(tiny_encoder_dir)), ["sst"]), tmp_path / "model")

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(ticketbert.measure, "prune_and_measure", failing)
    arguments = ["--model", str(model_dir), "--methods", "magnitude", "--levels", "0.2",
                 *tiny_overrides(tiny_encoder_dir, tmp_path)]
    if code is None:
        with pytest.raises(RuntimeError, match="boom"):
            main(arguments)
    else:
        assert main(arguments) == code
    runs = runs_of(tmp_path)
    assert len(runs) == 2 and {r.info.status for r in runs} == {status}  # the parent and its one level


def test_sigterm_checkpoints_marks_the_run_and_resumes(tiny_encoder_dir, tmp_path):
    arguments = tiny_overrides(tiny_encoder_dir, tmp_path, "train.epochs=12")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "ticketbert.train", *arguments]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "runs").glob("*/checkpoint/trainer_state.pt")):
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted: the last finished epoch is checkpointed" in stderr and "Traceback" not in stderr
    (run,) = runs_of(tmp_path)
    assert run.info.status == "KILLED"
    (run_folder,) = (tmp_path / "runs").iterdir()
    stopped_at = checkpoint_state(run_folder / "checkpoint")["epoch"]
    assert 1 <= stopped_at < 12
    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    (run,) = runs_of(tmp_path)  # the same run, reopened and finished
    assert run.info.status == "FINISHED"
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    epochs = [m.step for m in client.get_metric_history(run.info.run_id, "dev/accuracy")]
    assert sorted(epochs) == list(range(1, 13))  # every epoch once: none lost, none repeated


def test_an_interrupt_during_the_epochs_log_and_checkpoint_waits_for_both():
    """SIGINT inside the block does not stop it: the block finishes, then KeyboardInterrupt is
    raised, and Python's own handler is back."""
    from ticketbert.training.interrupts import interrupts_deferred

    finished = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # what a command line runs under
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts_deferred():
                signal.raise_signal(signal.SIGINT)
                finished.append("logged")
                finished.append("checkpointed")
        assert finished == ["logged", "checkpointed"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with interrupts_deferred():
            finished.append("quiet")  # no signal: nothing raised
        assert finished[-1] == "quiet"
    finally:
        signal.signal(signal.SIGINT, before)
