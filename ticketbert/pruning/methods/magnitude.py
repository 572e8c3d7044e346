"""Unstructured global L1 magnitude (Chen et al. 2020) on any ``nn.Module``."""

from __future__ import annotations

from ticketbert.pruning.masks import attach_masks, magnitude_scores, plan_masks
from ticketbert.pruning.methods.base import MaskPlan, Method, WeightScores


class Magnitude(Method):
    """The smallest |w| go, over all prunable matrices at once (``global``) or within each
    (``layer``); masks enforced through ``torch.nn.utils.prune``. Sparsity counts the model
    kind's prunable weights (an encoder's layer matrices; every ``nn.Linear`` of any other
    module), plus ``include`` minus ``exclude``."""

    name = "magnitude"

    def limit(self, model) -> float:
        return 1.0

    def score(self, model, criterion, calibration, *, include=(), exclude=()) -> WeightScores:
        values = magnitude_scores(model, include, exclude)
        return WeightScores(self.name, criterion, sum(v.numel() for v in values.values()), 0.0, values)

    def plan(self, scores, sparsity, scope, exclude=None, **options) -> MaskPlan:
        return MaskPlan(self.name, scores.criterion, sparsity, plan_masks(scores.values, sparsity, scope))

    def apply(self, model, plan) -> list:
        attach_masks(model, plan.masks)
        return []


METHOD = Magnitude()
