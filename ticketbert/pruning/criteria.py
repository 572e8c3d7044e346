"""Importance criteria of structured units, looked up by name.

- ``l1``: the L1 norm of the unit's weights (no data needed).
- ``taylor``: Michel et al. (2019)'s first-order proxy: |dL/dg| for a gate g on each unit,
  accumulated over calibration batches; one backward pass per batch scores every unit.
- ``loss_increment``: exact: the training-loss increase when the unit alone is removed,
  on a seeded calibration sample (the reference study's and Michel et al.'s definition).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ticketbert.data import Batch, TaskData, collate
from ticketbert.pruning.units import l1_unit_scores, unit_gates


@dataclass
class Calibration:
    """A fixed, seeded sample of training batches on which loss-based criteria are computed."""

    batches: list[tuple[str, Batch]]
    losses: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]

    @property
    def examples(self) -> int:
        return sum(len(b.labels) for _, b in self.batches)

    @property
    def tokens(self) -> int:
        return sum(b.tokens for _, b in self.batches)

    def batch_loss(self, model: nn.Module, task: str, batch: Batch) -> torch.Tensor:
        device = next(model.parameters()).device
        batch = batch.to(device)
        return self.losses[task](model(task, batch), batch.labels)

    def loss(self, model: nn.Module) -> float:
        """Mean training loss of ``model`` over the calibration examples (eval mode, no grad)."""
        was_training = model.training
        model.eval()
        with torch.no_grad():
            total = sum(float(self.batch_loss(model, t, b)) * len(b.labels) for t, b in self.batches)
        model.train(was_training)
        return total / self.examples


def make_calibration(data: dict[str, TaskData], examples: int = 256, *, pad_id: int = 0,
                     batch_size: int = 32, seed: int = 0) -> Calibration:
    """``examples`` seeded training examples of every task, in batches."""
    batches = []
    for name, task_data in data.items():
        chosen = random.Random(seed).sample(range(len(task_data.train)), min(examples, len(task_data.train)))
        for start in range(0, len(chosen), batch_size):
            batches.append((name, collate(task_data.train, chosen[start: start + batch_size], pad_id)))
    return Calibration(batches, {name: d.task.loss for name, d in data.items()})


def _encoder(model: nn.Module) -> nn.Module:
    return model.encoder if hasattr(model, "heads") else model


def l1_criterion(model: nn.Module, kind: str, calibration: Calibration | None) -> list[torch.Tensor]:
    return l1_unit_scores(_encoder(model), kind)


def taylor_criterion(model: nn.Module, kind: str, calibration: Calibration) -> list[torch.Tensor]:
    """Sum over calibration batches of |d loss / d gate| (batch-size weighted)."""
    was_training = model.training
    model.eval()
    with unit_gates(_encoder(model), kind, requires_grad=True) as gates:
        live = [g for g in gates if g.numel()]
        scores = [torch.zeros(g.numel()) for g in gates]
        for task, batch in calibration.batches:
            loss = calibration.batch_loss(model, task, batch)
            grads = iter(torch.autograd.grad(loss, live))
            weight = len(batch.labels) / calibration.examples
            for i, gate in enumerate(gates):
                if gate.numel():
                    scores[i] += next(grads).detach().abs().cpu() * weight
    model.train(was_training)
    return scores


def loss_increment_criterion(model: nn.Module, kind: str, calibration: Calibration) -> list[torch.Tensor]:
    """Calibration-loss increase when each unit alone is removed (one forward pass per unit)."""
    base = calibration.loss(model)
    with unit_gates(_encoder(model), kind) as gates:
        scores = [torch.zeros(g.numel()) for g in gates]
        units = [(i, u) for i, g in enumerate(gates) for u in range(g.numel())]
        for i, u in tqdm(units, desc=f"loss_increment ({kind})", leave=False, disable=len(units) < 50):
            with torch.no_grad():
                gates[i][u] = 0.0
            scores[i][u] = calibration.loss(model) - base
            with torch.no_grad():
                gates[i][u] = 1.0
    return scores


CRITERIA: dict[str, Callable[..., list[torch.Tensor]]] = {
    "l1": l1_criterion,
    "taylor": taylor_criterion,
    "loss_increment": loss_increment_criterion,
}
NEEDS_DATA = {"taylor", "loss_increment"}


def normalize_per_layer(scores: list[torch.Tensor]) -> list[torch.Tensor]:
    """Divide each layer's scores by their L2 norm (Michel et al.'s per-layer normalisation)."""
    return [s / s.norm().clamp(min=1e-12) if s.numel() else s for s in scores]
