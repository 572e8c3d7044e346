"""What a pruning method is: score units under a criterion, plan which go for a sparsity,
apply the plan to a model. ``Scores`` and ``Plan`` are plain values passed between the steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ticketbert.models.structure import Cut
from ticketbert.pruning.calibration import Calibration


@dataclass
class Scores:
    """Importance of every unit under one criterion; computed once, planned at many sparsities."""

    method: str
    criterion: str
    values: dict[str, torch.Tensor] | list[torch.Tensor]  # magnitude: per weight; else per layer
    unit_sizes: list[torch.Tensor] = field(default_factory=list)  # structured: weights per unit
    total: int = 0  # prunable weights of the scored model
    flops: float = 0.0  # model FLOPs spent scoring (forward passes, and backward for gradients)


@dataclass
class Plan:
    """What to remove: weight masks (unstructured) or unit indices per layer (structured)."""

    method: str
    criterion: str
    sparsity: float
    masks: dict[str, torch.Tensor] | None = None
    removed: dict[int, list[int]] = field(default_factory=dict)


class Method:
    """A pruning method, looked up by name in ``METHODS``."""

    name: str
    default_criterion: str
    criteria: tuple[str, ...]  # the criteria it accepts

    def limit(self, model: nn.Module) -> float:
        """The largest sparsity the method can reach on ``model``."""
        raise NotImplementedError

    def score(self, model: nn.Module, criterion: str, calibration: Calibration | None, *,
              include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Scores:
        raise NotImplementedError

    def plan(self, scores: Scores, sparsity: float, scope: str,
             exclude: dict[int, list[int]] | None = None) -> Plan:
        raise NotImplementedError

    def apply(self, model: nn.Module, plan: Plan) -> list[Cut]:
        """Carry out ``plan`` in place; the parameters cut (for optimizer-state slicing)."""
        raise NotImplementedError
