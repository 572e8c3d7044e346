"""Mask draws from the training step's own backward, instead of extra calibration passes.

``TrainingGates`` puts a per-row gate of ones on every unit of one kind (``UnitKind.example_gates``)
while a model trains. Gates of ones leave every output unchanged (fp32: bit for bit; under bf16
autocast the gate is cast to the activations' bf16); the training loss's backward then leaves
every example's gradient with respect to its gates in the gates' ``.grad``. After each optimizer
step ``collect`` folds them into the criterion's running sums (``GateGradient.term``) and drops
the gates, so memory does not grow.

Scale: an optimizer step's loss is taken to be the mean over the step's examples (ticketbert's
loop; any loop without gradient accumulation; one calling ``(loss / k).backward()`` over ``k``
equal micro-batches). An example's gradient of its own loss is then the step's example count
times its rows' gradients, and the sums equal the criterion's over the same batches as
calibration data (``taylor``, ``fisher_batch``: one term per forward pass, i.e. per micro-batch).
A step loss of another scale multiplies every unit's terms alike (e.g. the Hugging Face
``Trainer`` accumulating ``k`` micro-batches of a model that accepts ``num_items_in_batch`` but
ignores it, as BERT classification does: its step loss is ``k`` means, not one), which leaves
the masks as they are when every step has the same ``k``.

Cost: no extra forward or backward pass. Each gated projection input is multiplied by its gate in
the forward pass, and the backward adds the gate's gradient (a multiply and a sum over tokens):
elementwise work on ``hidden`` or ``ffn width`` values per token, against the matmuls' ``hidden x
width`` per token. Unlike calibration draws (eval mode, fixed batches, current weights), the
sums cover the batches trained on since the previous draw, in train mode (dropout on), at the
weights of each step.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from ticketbert.models.families import require_encoder
from ticketbert.pruning.calibration import batch_examples
from ticketbert.pruning.criteria import GateGradient, fold_rows
from ticketbert.pruning.units import UnitKind


class TrainingGates:
    """Gates on every ``unit`` of ``model``'s encoder, summing ``criterion`` from training's
    backward passes. ``close()`` removes the hooks."""

    def __init__(self, model: nn.Module, unit: UnitKind, criterion: GateGradient):
        encoder = require_encoder(model, f"training draws of {unit.name!r}")
        self.model, self.criterion = model, criterion
        self.totals = [torch.zeros(n) for n in unit.counts(encoder)]
        self.examples = 0  # examples whose gradients the totals hold
        self._forwards: list[tuple[int, list[int]]] = []  # (examples, gates per layer before it) per forward
        self._hooks = contextlib.ExitStack()
        try:
            self.captured = self._hooks.enter_context(unit.example_gates(encoder))
            self._hooks.callback(model.register_forward_pre_hook(self._mark_forward, with_kwargs=True).remove)
        except BaseException:
            self._hooks.close()
            raise
        self.attached = True

    def _mark_forward(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        """Before every forward pass of the model under autograd: its examples and where its gates start."""
        if torch.is_grad_enabled():
            self._forwards.append((batch_examples((args, kwargs)), [len(store) for store in self.captured]))

    def _rows(self, start: list[int], end: list[int]) -> list[torch.Tensor | None]:
        """Per layer, the [rows, units] gradients of one forward pass's gates (None: no gradient)."""
        per_layer = []
        for store, first, last in zip(self.captured, start, end):
            grads = [gate.grad for gate in store[first:last] if gate.grad is not None]
            per_layer.append(torch.cat(grads) if grads else None)
        return per_layer

    @torch.no_grad()
    def collect(self) -> None:
        """Fold the gate gradients of the backward passes since the last call into the sums
        (call once per optimizer step, after the step's last backward); drop the gates."""
        ends = [start for _, start in self._forwards[1:]] + [[len(store) for store in self.captured]]
        passes = [(examples, self._rows(start, end)) for (examples, start), end in zip(self._forwards, ends)]
        passes = [(examples, rows) for examples, rows in passes if any(r is not None for r in rows)
                  and all(r is None or bool(torch.isfinite(r).all()) for r in rows)]  # an overflowed pass counts nothing
        step_examples = sum(examples for examples, _ in passes)  # the step loss's mean runs over these
        for examples, rows in passes:
            for layer, per_row in enumerate(rows):
                if per_row is not None:
                    example_grads = fold_rows(per_row.float(), examples) * step_examples
                    self.totals[layer] = self.totals[layer].to(per_row.device) + self.criterion.term(example_grads)
        self.examples += step_examples
        for store in self.captured:
            store.clear()
        self._forwards.clear()

    def take(self) -> list[torch.Tensor]:
        """The criterion's scores over everything collected since the last ``take``; restart the sums."""
        if not self.examples:
            raise ValueError("no training backward reached the gates since the last draw: step the pruner after "
                             "each optimizer step of a model whose forward runs its encoder")
        scores = [self.criterion.finish(total, self.examples).cpu() for total in self.totals]
        self.totals = [torch.zeros_like(total, device="cpu") for total in self.totals]
        self.examples = 0
        return scores

    def close(self) -> None:
        """Remove every hook; the model runs as if never gated (the sums stay for ``take``)."""
        self._hooks.close()
        self.attached = False
        for store in self.captured:
            store.clear()
        self._forwards.clear()
