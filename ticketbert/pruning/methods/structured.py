"""Structured pruning of one unit kind (heads, FFN neurons or layers): units ranked by a
criterion, the lowest removed physically until the sparsity is reached."""

from __future__ import annotations

import torch

from ticketbert.models.compute import count_prunable
from ticketbert.models.families import require_encoder
from ticketbert.pruning.criteria import get_criterion
from ticketbert.pruning.methods.base import Method, UnitPlan, UnitScores
from ticketbert.pruning.units import UNIT_KINDS

def reachable(unit_sizes: list[torch.Tensor], total: int, keep_one: bool) -> float:
    """Share of ``total`` weights the units hold (all but the largest unit when one must stay)."""
    sizes = [float(s.sum()) for s in unit_sizes]
    return (sum(sizes) - (max(sizes) if keep_one and sizes else 0.0)) / total


class Structured(Method):
    """Removes whole units of the one kind its description names; a method whose limit is
    ``all_but_one_unit`` (``layers``) keeps at least one."""

    def __init__(self, name: str):
        self.name = name
        self.unit = UNIT_KINDS[self.description.units[0]]
        self.keep_one = self.description.limit == "all_but_one_unit"

    def limit(self, model) -> float:
        encoder = require_encoder(model, f"method {self.name!r}")
        return reachable(self.unit.weight_counts(encoder), count_prunable(model, nonzero=False), self.keep_one)

    def score(self, model, criterion, calibration, *, include=(), exclude=()) -> UnitScores:
        encoder = require_encoder(model, f"method {self.name!r}")
        chosen = get_criterion(criterion)
        values = chosen(model, encoder, self.unit, calibration)
        return self.scores_from(model, criterion, values, chosen.flops(values, calibration, model))

    def scores_from(self, model, criterion, values, flops=0.0) -> UnitScores:
        encoder = require_encoder(model, f"method {self.name!r}")
        return UnitScores(self.name, criterion, count_prunable(model, nonzero=False), flops, values,
                          self.unit.weight_counts(encoder))

    def max_sparsity(self, scores: UnitScores) -> float:
        return reachable(scores.unit_sizes, scores.total, self.keep_one)

    def plan(self, scores: UnitScores, sparsity: float, scope: str, exclude=None, **options) -> UnitPlan:
        limit = self.max_sparsity(scores)
        if sparsity > limit + 1e-9:
            raise ValueError(f"method {self.name!r} can remove at most {limit:.1%} of the prunable encoder "
                             f"weights, asked for {sparsity:.1%}")
        self.description.check_scope(scope)
        removed = {i: list(units) for i, units in (exclude or {}).items()}
        gone = {(i, u) for i, units in removed.items() for u in units}
        if scope == "layer":
            share = sparsity / limit if limit else 0.0
            for i, values in enumerate(scores.values):
                order = [u for u in torch.argsort(values, stable=True).tolist() if (i, u) not in gone]
                want = round(share * values.numel()) - len(removed.get(i, []))
                removed.setdefault(i, []).extend(order[:max(want, 0)])
        else:
            target = sparsity * scores.total
            done = sum(float(scores.unit_sizes[i][u]) for i, u in gone)
            flat = [(float(v), i, u) for i, values in enumerate(scores.values)
                    for u, v in enumerate(values.tolist()) if (i, u) not in gone]
            for _, i, u in sorted(flat):
                size = float(scores.unit_sizes[i][u])
                if done + size / 2 > target or (self.keep_one and len(removed) == len(scores.values) - 1):
                    break
                removed.setdefault(i, []).append(u)
                done += size
        removed = {i: sorted(units) for i, units in removed.items() if units}
        return UnitPlan(self.name, scores.criterion, sparsity, removed)

    def apply(self, model, plan) -> list:
        return self.unit.remove(require_encoder(model, f"method {self.name!r}"), plan.removed)


HEADS, FFN, LAYERS = Structured("heads"), Structured("ffn"), Structured("layers")
