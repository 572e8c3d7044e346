"""Wanda's input-feature norms from the training step's own forward passes, instead of calibration
passes: what early-bird draws and IMP rounds of ``wanda`` read.

``TrainingNorms`` hooks every prunable matrix of a model; each forward pass run with autograd on
(training, not evaluation under ``torch.no_grad``) adds the squared values of the matrix's
inputs over real tokens (the ``attention_mask`` the encoder is called with, else the model; every
token when the mask's shape does not match the input's) to a running sum per input feature.
``take`` turns the sums into ``||X_j||_2`` and restarts them. Unlike calibration norms (eval mode, fixed batches, a pruned
model's activations layer by layer) these cover the batches trained on since the previous draw,
in train mode (dropout on), at each step's weights, on the model as it is (not yet pruned while a
ticket is searched).

Cost: no extra pass; per matrix and token, a square and a sum over its input width (the matmul
does ``width x outputs`` multiply-adds), and one float per input feature of memory.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from ticketbert.models.compute import effective_weight, prunable_linears
from ticketbert.models.families import find_encoder
from ticketbert.pruning.calibration import batch_attention_mask
from ticketbert.pruning.oneshot.stats import InputStats


class TrainingNorms:
    """Running input-feature norms of ``model``'s prunable matrices over its grad-enabled forward
    passes. ``close()`` removes the hooks. The interface matches ``TrainingGates``: ``totals``,
    ``examples`` (here: tokens), ``collect``, ``take``, ``close``."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.linears = prunable_linears(model)
        self._stats = {name: InputStats.empty(effective_weight(m).shape[1], gram=False)
                       for name, m in self.linears.items()}
        self._mask: torch.Tensor | None = None  # of the forward pass running now
        self._hooks = contextlib.ExitStack()
        try:
            encoder = find_encoder(model, strict=False)  # its own call carries the mask of the rows it encodes
            caller = encoder.module if encoder is not None else model
            self._hooks.callback(caller.register_forward_pre_hook(self._mark_forward, with_kwargs=True).remove)
            for name, linear in self.linears.items():
                self._hooks.callback(linear.register_forward_pre_hook(self._adder(name)).remove)
        except BaseException:
            self._hooks.close()
            raise
        self.attached = True

    def _mark_forward(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        """Before every forward pass of the encoder (else of the model): the attention mask its
        tokens are read under."""
        self._mask = batch_attention_mask((args, kwargs))

    def _adder(self, name: str):
        def add(_, args):
            if torch.is_grad_enabled():
                stats = self._stats[name]
                x = args[0]
                if stats.squared_norms.device != x.device:
                    stats.squared_norms = stats.squared_norms.to(x.device)
                stats.add(x, self._mask)
        return add

    @property
    def totals(self) -> list[torch.Tensor]:
        """Per matrix (in ``linears`` order), the sum of each input feature's squares."""
        return [s.squared_norms for s in self._stats.values()]

    @totals.setter
    def totals(self, values: list[torch.Tensor]) -> None:
        for stats, value in zip(self._stats.values(), values):
            stats.squared_norms = value

    @property
    def examples(self) -> int:
        """Tokens summed since the last ``take`` (the first matrix's; every matrix sees them all)."""
        return next(iter(self._stats.values())).tokens if self._stats else 0

    @examples.setter
    def examples(self, tokens: int) -> None:
        for stats in self._stats.values():
            stats.tokens = tokens

    def collect(self) -> None:
        """Nothing to fold: the hooks add each forward's inputs as it runs."""

    def take(self) -> dict[str, torch.Tensor]:
        """``||X_j||_2`` per input feature of every matrix (keyed ``<name>.weight``) over the
        tokens since the last ``take``; restart the sums."""
        if not self.examples:
            raise ValueError("no training forward pass reached the prunable matrices since the last draw: step the "
                             "pruner after each optimizer step of a model whose forward runs them")
        norms = {f"{name}.weight": stats.norms.cpu() for name, stats in self._stats.items()}
        self._stats = {name: InputStats.empty(stats.squared_norms.numel(), gram=False)
                       for name, stats in self._stats.items()}
        return norms

    def close(self) -> None:
        """Remove the hooks; the sums stay for ``take``."""
        self._hooks.close()
        self.attached = False

    def __enter__(self) -> "TrainingNorms":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
