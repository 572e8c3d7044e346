"""Importance criteria of structured units, looked up by name.

- ``l1``: the L1 norm of the unit's weights (no data needed).
- ``taylor``: Michel et al. (2019)'s first-order proxy: |dL/dg| for a gate g on each unit,
  summed over calibration batches (batch-size weighted); one backward pass per batch.
- ``loss_increment``: exact: the calibration-loss increase when the unit alone is removed
  (the reference study's and Michel et al.'s definition); one forward pass per unit.

A criterion is called with the model, its encoder, the unit kind and a ``Calibration`` (the
user's batches and ``loss_fn``): ticketbert's own tasks and any Hugging Face model go through
the same code.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from ticketbert.models.families import Encoder
from ticketbert.pruning.calibration import Calibration, batch_examples
from ticketbert.pruning.units import UnitKind


class Criterion:
    """Scores every unit of one kind; ``needs_data`` criteria read a Calibration."""

    name: str
    needs_data: bool = True

    def __call__(self, model: nn.Module, encoder: Encoder, unit: UnitKind,
                 calibration: Calibration | None) -> list[torch.Tensor]:
        raise NotImplementedError

    def passes(self, scores: list[torch.Tensor]) -> int:
        """Forward-pass equivalents over the calibration tokens that scoring cost (backward = 2)."""
        return 0


class L1(Criterion):
    name = "l1"
    needs_data = False

    def __call__(self, model, encoder, unit, calibration):
        return unit.l1(encoder)


class Taylor(Criterion):
    name = "taylor"

    def __call__(self, model, encoder, unit, calibration):
        """Sum over calibration batches of |d loss / d gate| (batch-size weighted)."""
        was_training = model.training
        model.eval()
        with unit.gates(encoder, requires_grad=True) as gates:
            live = [g for g in gates if g.numel()]
            scores = [torch.zeros(g.numel()) for g in gates]
            for batch in calibration.batches:
                loss = calibration.batch_loss(model, batch)
                grads = iter(torch.autograd.grad(loss, live))
                weight = batch_examples(batch) / calibration.examples
                for i, gate in enumerate(gates):
                    if gate.numel():
                        scores[i] += next(grads).detach().abs().cpu() * weight
        model.train(was_training)
        return scores

    def passes(self, scores):
        return 3


class LossIncrement(Criterion):
    name = "loss_increment"

    def __call__(self, model, encoder, unit, calibration):
        """Calibration-loss increase when each unit alone is removed (one forward pass per unit)."""
        base = calibration.loss(model)
        with unit.gates(encoder) as gates:
            scores = [torch.zeros(g.numel()) for g in gates]
            units = [(i, u) for i, g in enumerate(gates) for u in range(g.numel())]
            for i, u in tqdm(units, desc=f"loss_increment ({unit.name})", leave=False, disable=len(units) < 50):
                with torch.no_grad():
                    gates[i][u] = 0.0
                scores[i][u] = calibration.loss(model) - base
                with torch.no_grad():
                    gates[i][u] = 1.0
        return scores

    def passes(self, scores):
        return 1 + sum(s.numel() for s in scores)


CRITERIA: dict[str, Criterion] = {c.name: c for c in (L1(), Taylor(), LossIncrement())}


def get_criterion(name: str) -> Criterion:
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r}; known: {sorted(CRITERIA)}")
    return CRITERIA[name]


def normalize_per_layer(scores: list[torch.Tensor]) -> list[torch.Tensor]:
    """Divide each layer's scores by their L2 norm (Michel et al.'s per-layer normalisation)."""
    return [s / s.norm().clamp(min=1e-12) if s.numel() else s for s in scores]
