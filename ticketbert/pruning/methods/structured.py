"""Structured pruning of one unit kind (heads, FFN neurons or layers): units ranked by a
criterion, the lowest removed physically until the sparsity is reached."""

from __future__ import annotations

import torch

from ticketbert.models.compute import count_prunable
from ticketbert.models.families import require_encoder
from ticketbert.pruning.criteria import get_criterion
from ticketbert.pruning.methods.base import Method, Plan, Scores
from ticketbert.pruning.units import UnitKind



def reachable(unit_sizes: list[torch.Tensor], total: int, keep_one: bool) -> float:
    """Share of ``total`` weights the units hold (all but the largest unit when one must stay)."""
    sizes = [float(s.sum()) for s in unit_sizes]
    return (sum(sizes) - (max(sizes) if keep_one and sizes else 0.0)) / total


class Structured(Method):
    """Removes whole units of ``unit``; ``layers`` keeps at least one layer."""

    criteria = ("l1", "taylor", "loss_increment", "fisher", "fisher_batch")

    def __init__(self, unit: UnitKind, default_criterion: str):
        self.unit, self.name, self.default_criterion = unit, unit.name, default_criterion
        self.keep_one = unit.name == "layers"

    def limit(self, model) -> float:
        encoder = require_encoder(model, f"method {self.name!r}")
        return reachable(self.unit.weight_counts(encoder), count_prunable(model, nonzero=False), self.keep_one)

    def score(self, model, criterion, calibration, *, include=(), exclude=()) -> Scores:
        encoder = require_encoder(model, f"method {self.name!r}")
        chosen = get_criterion(criterion)
        values = chosen(model, encoder, self.unit, calibration)
        return self.scores_from(model, criterion, values, chosen.flops(values, calibration, model))

    def scores_from(self, model, criterion, values, flops=0.0) -> Scores:
        encoder = require_encoder(model, f"method {self.name!r}")
        return Scores(self.name, criterion, values, self.unit.weight_counts(encoder),
                      count_prunable(model, nonzero=False), flops)

    def max_sparsity(self, scores: Scores) -> float:
        return reachable(scores.unit_sizes, scores.total, self.keep_one)

    def plan(self, scores: Scores, sparsity: float, scope: str, exclude=None, **options) -> Plan:
        limit = self.max_sparsity(scores)
        if sparsity > limit + 1e-9:
            raise ValueError(f"method {self.name!r} can remove at most {limit:.1%} of the prunable encoder "
                             f"weights, asked for {sparsity:.1%}")
        if scope not in ("global", "layer"):
            raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
        if scope == "layer" and self.keep_one:
            raise ValueError("method 'layers' ranks whole layers: use scope 'global'")
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
        return Plan(self.name, scores.criterion, sparsity, removed=removed)

    def apply(self, model, plan) -> list:
        return self.unit.remove(require_encoder(model, f"method {self.name!r}"), plan.removed)
