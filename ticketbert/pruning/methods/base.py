"""What a pruning method does: score units under a criterion, plan which go for a sparsity,
apply the plan to a model. Scores and plans are plain values passed between the steps, one
type per kind: weights (unstructured masks), units of one kind, units of several kinds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ticketbert.models.structure import Cut
from ticketbert.pruning.calibration import Calibration
from ticketbert.pruning.methods.description import MethodDescription, describe


@dataclass
class Scores:
    """Importance under one criterion; computed once, planned at many sparsities."""

    method: str
    criterion: str
    total: int  # prunable weights of the scored model
    flops: float  # model FLOPs spent scoring (forward passes, and backward for gradients)


@dataclass
class WeightScores(Scores):
    """Per weight: parameter name -> importance of each entry."""

    values: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class UnitScores(Scores):
    """One unit kind: per layer, the importance and the weight count of every unit."""

    values: list[torch.Tensor] = field(default_factory=list)
    unit_sizes: list[torch.Tensor] = field(default_factory=list)


@dataclass
class JointScores(Scores):
    """Several unit kinds under one budget: per kind and layer, importance, weights and FLOPs/token."""

    values: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    unit_sizes: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    unit_flops: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    total_flops: float = 0.0  # the scored model's FLOPs per token (what the units hold)


@dataclass
class Plan:
    """What to remove to reach ``sparsity``."""

    method: str
    criterion: str
    sparsity: float

    def removals(self) -> dict[str, dict[int, list[int]]]:
        """Unit kind -> layer -> removed unit indices (nothing for weight masks)."""
        return {}


@dataclass
class MaskPlan(Plan):
    """Unstructured: parameter name -> keep-mask (True = kept)."""

    masks: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class UnitPlan(Plan):
    """One unit kind (the method's): layer -> removed unit indices."""

    removed: dict[int, list[int]] = field(default_factory=dict)

    def removals(self) -> dict[str, dict[int, list[int]]]:
        return {describe(self.method).units[0]: self.removed}


@dataclass
class JointPlan(Plan):
    """Several unit kinds: kind -> layer -> removed unit indices."""

    removed_by_kind: dict[str, dict[int, list[int]]] = field(default_factory=dict)

    def removals(self) -> dict[str, dict[int, list[int]]]:
        return self.removed_by_kind


class Method:
    """A pruning method's implementation; what it is (criteria, options, modes) is its
    ``description``, looked up by ``name``."""

    name: str

    @property
    def description(self) -> MethodDescription:
        return describe(self.name)

    def limit(self, model: nn.Module) -> float:
        """The largest sparsity the method can reach on ``model``."""
        raise NotImplementedError

    def max_sparsity(self, scores: Scores) -> float:
        """The largest sparsity ``scores`` can be planned at (structured methods: what their units hold)."""
        return 1.0

    def score(self, model: nn.Module, criterion: str, calibration: Calibration | None, *,
              include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Scores:
        raise NotImplementedError

    def draw_scores(self, model: nn.Module, criterion: str, calibration: Calibration | None) -> Scores:
        """Scores an early-bird draw plans a mask from (default: ``score``); a sequential method
        that can score per weight from one pass overrides it."""
        return self.score(model, criterion, calibration)

    def scores_from(self, model: nn.Module, criterion: str, values, flops: float = 0.0) -> Scores:
        """``Scores`` of ``model`` around already computed unit ``values`` (e.g. read from a cache)."""
        raise NotImplementedError

    def plan(self, scores: Scores, sparsity: float, scope: str,
             exclude: dict[int, list[int]] | None = None, **options) -> Plan:
        """``options``: the method's planning options (``heads+ffn``: budget, round_to)."""
        raise NotImplementedError

    def apply(self, model: nn.Module, plan: Plan) -> list[Cut]:
        """Carry out ``plan`` in place; the parameters cut (for optimizer-state slicing)."""
        raise NotImplementedError
