"""The training loop: one function for single-task and multitask fine-tuning."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from ticketbert.config import TrainConfig
from ticketbert.data import TaskData, collate, length_grouped_batches
from ticketbert.models.compute import attention_flops_per_token, linear_flops_per_token
from ticketbert.training.checkpoint import checkpoint_state, has_checkpoint, load_weights, save_checkpoint
from ticketbert.training.device import autocast, random_states, select_device, set_random_states, use_bf16
from ticketbert.training.evaluate import evaluate
from ticketbert.training.interrupts import interrupts_deferred


BatchLoss = Callable[[torch.nn.Module, str, Any], torch.Tensor]  # (model, task name, Batch) -> loss


class Logger(Protocol):
    """Where per-epoch metrics go (see ticketbert.tracking.MlflowLogger)."""

    def log_dict(self, payload: dict[str, float], step: int) -> None: ...


class Callback:
    """A training-time object stepped by the loop. Override what you need."""

    should_stop: bool = False

    def on_train_begin(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        """Once per ``fit``, before the first step: the optimizer and scheduler are built (and
        restored from the checkpoint when resuming)."""

    def on_step_end(self, model: torch.nn.Module, step: int, optimizer: torch.optim.Optimizer,
                    totals: "TrainResult") -> bool | None:
        """After every optimizer step (``step`` counts from 1 over the whole run; ``totals``: the
        run's steps and training FLOPs so far). Return True when the model's shape changed
        (units removed): the loop recounts its FLOPs."""

    def on_resume(self, model: torch.nn.Module) -> None:
        """After ``load_state_dict`` on resume, before the checkpoint's weights are loaded:
        reshape ``model`` as it was when the checkpoint was written."""

    def on_epoch_end(self, model: torch.nn.Module, epoch: int, metrics: dict[str, float]) -> None:
        """After evaluation at the end of every epoch (``epoch`` counts from 1)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict()``."""


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss or gradient norm; nothing of that step was applied."""

    def __init__(self, what: str, step: int, epoch: int, last_finite: float | None, bf16: bool):
        last = "none yet" if last_finite is None else f"{last_finite:.4g}"
        hint = "lower train.lr" + (" or set train.bf16=false" if bf16 else "")
        super().__init__(f"non-finite {what} at step {step} (epoch {epoch}); last finite loss {last}; "
                         f"the last finished epoch's checkpoint is kept; try: {hint}")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)  # metrics of every epoch
    steps: int = 0
    train_flops: float = 0.0  # forward + backward FLOPs spent on training (3x forward)

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def training_schedule(data: dict[str, TaskData], config: TrainConfig, epoch: int) -> list[tuple[str, list[int]]]:
    """(task, example indices) of every step of ``epoch``: each task's train set once, in
    length-grouped batches, interleaved round-robin or in a random size-proportional order."""
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    per_task = {name: length_grouped_batches(d.train.lengths, config.batch_size_of(name), generator)
                for name, d in data.items()}
    if config.sampling == "proportional":
        steps = [(name, b) for name, batches in per_task.items() for b in batches]
        return [steps[i] for i in torch.randperm(len(steps), generator=generator).tolist()]
    longest = max(len(batches) for batches in per_task.values())
    return [(name, batches[i]) for i in range(longest) for name, batches in per_task.items() if i < len(batches)]


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and LayerNorm; the fused kernel on CPU and CUDA
    (one pass over all parameters; bench/train_throughput.py times it against the per-tensor loop)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = all(p.device.type in ("cpu", "cuda") for p in decay + no_decay)
    return torch.optim.AdamW(groups, lr=config.lr, fused=fused)


def fit(model: torch.nn.Module, data: dict[str, TaskData], config: TrainConfig, *, pad_id: int,
        logger: Logger | None = None, checkpoint_dir: Path | None = None,
        callbacks: Sequence[Callback] = (), epochs: int | None = None, first_epoch: int = 1,
        batch_loss: BatchLoss | None = None) -> TrainResult:
    """Fine-tune ``model`` on ``data`` for ``epochs`` (default ``config.epochs``).

    After every epoch: metrics on every task's full dev set and fixed train subsample, sent to
    ``logger`` with step = epoch, and a checkpoint in ``checkpoint_dir``. If that directory holds
    a checkpoint, training resumes from it and ends where an uninterrupted run would.
    ``first_epoch`` numbers the epochs of a later phase (e.g. after pruning) after earlier ones.
    ``batch_loss`` replaces the task loss (e.g. ``ticketbert.pruning.distill.Distiller``).
    """
    epochs = config.epochs if epochs is None else epochs
    device = select_device(config.device)
    bf16 = use_bf16(device, config.bf16)
    model.to(device)
    result = TrainResult()

    # resume from the last finished epoch, if any: callbacks reshape the model first
    state = checkpoint_state(checkpoint_dir) if checkpoint_dir is not None and has_checkpoint(checkpoint_dir) else None
    if state is not None:
        for callback, callback_state in zip(callbacks, state["callbacks"]):
            callback.load_state_dict(callback_state)
            callback.on_resume(model)
        load_weights(checkpoint_dir, model)
    optimizer = build_optimizer(model, config)
    steps_per_epoch = len(training_schedule(data, config, 0))
    total_steps = steps_per_epoch * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    start = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_random_states(state["rng"])
        start, result.steps, result.train_flops = state["epoch"], state["steps"], state["train_flops"]
        result.history = list(state["history"])
    for callback in callbacks:
        callback.on_train_begin(model, optimizer, scheduler)

    last_loss: torch.Tensor | None = None  # of the last applied step (read only on a failure)
    for epoch in range(start, epochs):
        if any(c.should_stop for c in callbacks):
            break
        number = first_epoch + epoch
        began = time.perf_counter()
        linear_fpt = linear_flops_per_token(model)
        model.train()
        # -- train one epoch
        schedule = training_schedule(data, config, epoch)
        for task_name, indices in tqdm(schedule, desc=f"epoch {number}", disable=not config.progress, leave=False):
            task_data = data[task_name]
            batch = collate(task_data.train, indices, pad_id).to(device)
            with autocast(device, bf16):
                if batch_loss is not None:
                    loss = batch_loss(model, task_name, batch)
                else:
                    loss = task_data.task.loss(model(task_name, batch), batch.labels)
            loss.backward()
            norm = (torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    if config.max_grad_norm is not None else None)
            # one sync per step: stop before a NaN or inf reaches the weights
            if not bool(torch.isfinite(loss if norm is None else loss.detach() + norm)):
                what = "loss" if not bool(torch.isfinite(loss)) else "gradient norm"
                raise NonFiniteLoss(what, result.steps + 1, number, None if last_loss is None else float(last_loss), bf16)
            last_loss = loss.detach()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            result.steps += 1
            tokens = batch.tokens
            width = batch.input_ids.shape[1]
            result.train_flops += 3 * tokens * (linear_fpt + attention_flops_per_token(model, width))
            reshaped = [callback.on_step_end(model, result.steps, optimizer, result) for callback in callbacks]
            if any(reshaped):
                linear_fpt = linear_flops_per_token(model)
            if any(c.should_stop for c in callbacks):
                break
        # -- evaluate on dev and the train subsample
        metrics = evaluate(model, data, pad_id=pad_id, batch_size=config.eval_batch_size, device=device,
                           bf16=bf16)
        metrics.update({"epoch_seconds": time.perf_counter() - began, "train_flops": result.train_flops,
                        "lr": optimizer.param_groups[0]["lr"]})
        result.history.append(metrics)
        tqdm.write(f"epoch {number}: " + ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith(("dev/", "train/")) and "loss" not in k))
        with interrupts_deferred():  # Ctrl-C / SIGTERM wait until the epoch is both logged and checkpointed
            if logger is not None:
                logger.log_dict(metrics, step=number)
            for callback in callbacks:
                callback.on_epoch_end(model, number, metrics)
            # -- checkpoint
            if checkpoint_dir is not None:
                save_checkpoint(checkpoint_dir, model, {
                    "epoch": epoch + 1, "steps": result.steps, "train_flops": result.train_flops,
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": random_states(), "history": result.history,
                    "callbacks": [c.state_dict() for c in callbacks],
                })
    return result
