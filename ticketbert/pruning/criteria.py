"""Importance criteria of structured units, looked up by name.

- ``l1``: the L1 norm of the unit's weights (no data needed).
- ``taylor``: Michel et al. (2019)'s first-order proxy: |dL/dg| for a gate g on each unit,
  summed over calibration batches (batch-size weighted); one backward pass per batch.
- ``loss_increment``: exact: the calibration-loss increase when the unit alone is removed
  (the reference study's and Michel et al.'s definition); one forward pass per unit.
- ``fisher``: the empirical Fisher diagonal of the gates (Kwon et al. 2022): the sum over
  calibration EXAMPLES of (d loss_example / d gate)^2, a second-order estimate of the loss
  increase of removing the unit (``0.5 * F``). Per-example gradients cost one backward per
  batch: every layer's gate has one row per encoder input row (``UnitKind.example_gates``);
  the batch loss is a mean over its examples, so an example's gradient is the batch size times
  its rows' gradient, its rows being folded back to examples segment-major (a bi-encoder batch
  encodes ``segments x examples`` rows: segment 0 of every example, then segment 1).
- ``fisher_batch``: the per-mini-batch variant: the sum over batches of
  ``batch size x (d mean batch loss / d gate)^2``, from the same shared gates as ``taylor``.
  Cheaper in memory, but a batch's mean gradient averages examples' gradients of opposite
  signs away, so it ranks less faithfully than ``fisher`` (bench/retraining_free.py measures it).

``taylor``, ``fisher``, ``fisher_batch`` and ``loss_increment`` all estimate the loss increase of
removing a unit in the calibration loss's units, whatever the unit's kind: scores of heads and
FFN neurons are comparable as they are (the joint ``heads+ffn`` method sums them).

A criterion is called with the model, its encoder, the unit kind and a ``Calibration`` (the
user's batches and ``loss_fn``): ticketbert's own tasks and any Hugging Face model go through
the same code.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from ticketbert.models.compute import FLOPS_SEQ_LEN, flops_per_token
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

    fixed_passes = 0  # forward-pass equivalents per calibration token (a backward counts 2)

    def passes(self, scores: list[torch.Tensor]) -> int:
        """Forward-pass equivalents over the calibration tokens that scoring cost."""
        return self.fixed_passes

    def flops(self, scores: list[torch.Tensor], calibration: Calibration | None, model: nn.Module) -> float:
        """Model FLOPs that computing ``scores`` cost (0 without calibration data)."""
        passes = self.passes(scores)
        return passes * calibration.tokens * flops_per_token(model, FLOPS_SEQ_LEN) if calibration and passes else 0.0


class L1(Criterion):
    name = "l1"
    needs_data = False

    def __call__(self, model, encoder, unit, calibration):
        return unit.l1(encoder)


def batch_gate_gradients(model: nn.Module, encoder: Encoder, unit: UnitKind,
                         calibration: Calibration) -> Iterator[tuple[int, list[torch.Tensor]]]:
    """(examples, d mean batch loss / d gate of every layer) for each calibration batch (eval mode)."""
    was_training = model.training
    model.eval()
    try:
        with unit.gates(encoder, requires_grad=True) as gates:
            live = [g for g in gates if g.numel()]
            for batch in calibration.batches:
                grads = iter(torch.autograd.grad(calibration.batch_loss(model, batch), live, allow_unused=True))
                per_layer = []
                for gate in gates:
                    grad = next(grads) if gate.numel() else None
                    per_layer.append(torch.zeros(gate.numel()) if grad is None else grad.detach().float().cpu())
                yield batch_examples(batch), per_layer
    finally:
        model.train(was_training)


def fold_rows(per_row: torch.Tensor, examples: int) -> torch.Tensor:
    """Each example's gate gradient [examples, units] from its encoder rows' [rows, units]
    (segment-major: segment 0 of every example, then segment 1)."""
    if per_row.shape[0] % examples:
        raise ValueError(f"per-example gate gradients: the encoder saw {per_row.shape[0]} rows for a batch of "
                         f"{examples} examples; rows must be a whole number of segments per example")
    return per_row.view(-1, examples, per_row.shape[1]).sum(0)


def example_gate_gradients(model: nn.Module, encoder: Encoder, unit: UnitKind,
                           calibration: Calibration) -> Iterator[list[torch.Tensor]]:
    """Per calibration batch, every layer's [examples, units] gradients of each example's own
    loss with respect to the gates (see ``fisher`` above for the row-to-example folding)."""
    counts = unit.counts(encoder)
    was_training = model.training
    model.eval()
    try:
        with unit.example_gates(encoder) as captured:
            for batch in calibration.batches:
                for store in captured:
                    store.clear()
                loss = calibration.batch_loss(model, batch)
                examples = batch_examples(batch)
                flat = [g for store in captured for g in store]
                grads = iter(torch.autograd.grad(loss, flat, allow_unused=True))
                per_layer = []
                for store, units in zip(captured, counts):
                    rows = [(g if (g := next(grads)) is not None else torch.zeros_like(gate)) for gate in store]
                    if not rows:
                        per_layer.append(torch.zeros(examples, units))
                        continue
                    per_layer.append(fold_rows(torch.cat(rows).detach().float().cpu(), examples) * examples)
                yield per_layer
    finally:
        model.train(was_training)


class GateGradient(Criterion):
    """A criterion summed over batches from the gates' gradients (one backward per batch). The
    same sums come from calibration passes (``__call__``) or from training's own backward
    (``ticketbert.pruning.training_draws``): ``term`` is one batch's share, ``finish`` the total's
    last step."""

    fixed_passes = 3  # forward + backward

    def term(self, example_grads: torch.Tensor) -> torch.Tensor:
        """One batch's share from its examples' gradients of their own loss ([examples, units])."""
        raise NotImplementedError

    def finish(self, total: torch.Tensor, examples: int) -> torch.Tensor:
        """The score from the sum of ``term`` over batches holding ``examples`` examples."""
        return total


class _BatchGradient(GateGradient):
    """A criterion of each batch's gradient of its mean loss (shared gates suffice)."""

    def batch_term(self, mean_grad: torch.Tensor, examples: int) -> torch.Tensor:
        raise NotImplementedError

    def term(self, example_grads):
        return self.batch_term(example_grads.mean(0), example_grads.shape[0])

    def __call__(self, model, encoder, unit, calibration):
        scores = [torch.zeros(n) for n in unit.counts(encoder)]
        for examples, grads in batch_gate_gradients(model, encoder, unit, calibration):
            for total, grad in zip(scores, grads):
                total += self.batch_term(grad, examples)
        return [self.finish(total, calibration.examples) for total in scores]


class Taylor(_BatchGradient):
    """Sum over calibration batches of |d loss / d gate| (batch-size weighted)."""

    name = "taylor"

    def batch_term(self, mean_grad, examples):
        return mean_grad.abs() * examples

    def finish(self, total, examples):
        return total / examples


class Fisher(GateGradient):
    """Sum over calibration examples of (d loss_example / d gate)^2 (one backward per batch)."""

    name = "fisher"

    def term(self, example_grads):
        return example_grads.pow(2).sum(0)

    def __call__(self, model, encoder, unit, calibration):
        scores = [torch.zeros(n) for n in unit.counts(encoder)]
        for grads in example_gate_gradients(model, encoder, unit, calibration):
            for total, grad in zip(scores, grads):
                total += self.term(grad)
        return scores


class FisherBatch(_BatchGradient):
    """Sum over calibration batches of batch size x (d mean batch loss / d gate)^2."""

    name = "fisher_batch"

    def batch_term(self, mean_grad, examples):
        return mean_grad.pow(2) * examples


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


class WeightCriterion(Criterion):
    """A criterion of single weights, computed inside its method's layer-wise calibration loop
    (``ticketbert.pruning.oneshot``): ``activation`` (Wanda: |W_ij| x ||X_j||) and ``obs``
    (SparseGPT: w^2 / [H^-1]_jj^2). It ranks no structured units."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, model, encoder, unit, calibration):
        raise ValueError(f"criterion {self.name!r} scores single weights in the layer-wise calibration loop, "
                         f"not units ({unit.name})")


CRITERIA: dict[str, Criterion] = {c.name: c for c in (L1(), Taylor(), LossIncrement(), Fisher(), FisherBatch(),
                                                      WeightCriterion("activation"), WeightCriterion("obs"))}


def get_criterion(name: str) -> Criterion:
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r}; known: {sorted(CRITERIA)}")
    return CRITERIA[name]


def normalize_per_layer(scores: list[torch.Tensor]) -> list[torch.Tensor]:
    """Divide each layer's scores by their L2 norm (Michel et al.'s per-layer normalisation)."""
    return [s / s.norm().clamp(min=1e-12) if s.numel() else s for s in scores]
