"""Unstructured global L1 magnitude (Chen et al. 2020) on any ``nn.Module``."""

from __future__ import annotations

from ticketbert.pruning.masks import attach_masks, magnitude_scores, plan_masks
from ticketbert.pruning.methods.base import MaskPlan, Method, WeightScores
from ticketbert.pruning.nm_pattern import parse_pattern, resolve_sparsity
from ticketbert.pruning.oneshot.patterns import check_widths, select


def plan_weight_masks(scores: WeightScores, sparsity: float, scope: str, pattern: str | None = None) -> MaskPlan:
    """The lowest of per-weight ``scores`` go: over all matrices (``global``), within each
    (``layer``) or each output row (``row``), or N:M per row group under ``pattern``."""
    nm = parse_pattern(pattern)
    sparsity = resolve_sparsity(sparsity, nm)
    if nm is None and scope != "row":
        return MaskPlan(scores.method, scores.criterion, sparsity, plan_masks(scores.values, sparsity, scope))
    check_widths({name: v.shape[-1] for name, v in scores.values.items()}, nm)
    return MaskPlan(scores.method, scores.criterion, sparsity,
                    {name: select(v.reshape(v.shape[0], -1), sparsity, scope, nm).view_as(v)
                     for name, v in scores.values.items()})


class Magnitude(Method):
    """The smallest |w| go, over all prunable matrices at once (``global``), within each
    (``layer``) or within each output row (``row``), or N:M per row group under ``pattern``; masks enforced through ``torch.nn.utils.prune``. Sparsity counts the model
    kind's prunable weights (an encoder's layer matrices; every ``nn.Linear`` of any other
    module), plus ``include`` minus ``exclude``."""

    name = "magnitude"

    def limit(self, model) -> float:
        return 1.0

    def score(self, model, criterion, calibration, *, include=(), exclude=()) -> WeightScores:
        values = magnitude_scores(model, include, exclude)
        return WeightScores(self.name, criterion, sum(v.numel() for v in values.values()), 0.0, values)

    def plan(self, scores, sparsity, scope, exclude=None, pattern=None, **options) -> MaskPlan:
        return plan_weight_masks(scores, sparsity, scope, pattern)

    def apply(self, model, plan) -> list:
        attach_masks(model, plan.masks)
        return []


METHOD = Magnitude()
