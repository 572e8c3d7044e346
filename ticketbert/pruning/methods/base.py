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
    # magnitude: per weight; one unit kind: per layer; several kinds (heads+ffn): kind -> per layer
    values: dict[str, torch.Tensor] | list[torch.Tensor] | dict[str, list[torch.Tensor]]
    unit_sizes: list[torch.Tensor] | dict[str, list[torch.Tensor]] = field(default_factory=list)  # weights per unit
    total: int = 0  # prunable weights of the scored model
    flops: float = 0.0  # model FLOPs spent scoring (forward passes, and backward for gradients)
    unit_flops: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # heads+ffn: FLOPs/token per unit
    total_flops: float = 0.0  # heads+ffn: the scored model's FLOPs per token (what the units hold)


@dataclass
class Plan:
    """What to remove: weight masks (unstructured) or unit indices per layer (structured)."""

    method: str
    criterion: str
    sparsity: float
    masks: dict[str, torch.Tensor] | None = None
    removed: dict[int, list[int]] = field(default_factory=dict)
    removed_by_kind: dict[str, dict[int, list[int]]] = field(default_factory=dict)  # several unit kinds

    def removals(self) -> dict[str, dict[int, list[int]]]:
        """Unit kind -> layer -> removed unit indices (empty for magnitude masks)."""
        if self.removed_by_kind:
            return self.removed_by_kind
        return {self.method: self.removed} if self.masks is None else {}


class Method:
    """A pruning method, looked up by name in ``METHODS``."""

    name: str
    default_criterion: str
    criteria: tuple[str, ...]  # the criteria it accepts
    plan_options: tuple[str, ...] = ()  # keyword options of ``plan`` (heads+ffn: budget, round_to)

    def limit(self, model: nn.Module) -> float:
        """The largest sparsity the method can reach on ``model``."""
        raise NotImplementedError

    def max_sparsity(self, scores: "Scores") -> float:
        """The largest sparsity ``scores`` can be planned at (structured methods: what their units hold)."""
        return 1.0

    def score(self, model: nn.Module, criterion: str, calibration: Calibration | None, *,
              include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Scores:
        raise NotImplementedError

    def scores_from(self, model: nn.Module, criterion: str, values, flops: float = 0.0) -> Scores:
        """``Scores`` of ``model`` around already computed unit ``values`` (e.g. read from a cache)."""
        raise NotImplementedError

    def plan(self, scores: Scores, sparsity: float, scope: str,
             exclude: dict[int, list[int]] | None = None, **options) -> Plan:
        """``options``: method-specific planning options (``heads+ffn``: budget, round_to)."""
        raise NotImplementedError

    def apply(self, model: nn.Module, plan: Plan) -> list[Cut]:
        """Carry out ``plan`` in place; the parameters cut (for optimizer-state slicing)."""
        raise NotImplementedError
