"""Heads and FFN neurons under ONE budget (Kwon et al. 2022, "A Fast Post-Training Pruning
Framework for Transformers"): keep the set of heads and neurons with the largest summed
importance whose cost fits the budget.

- Budget: FLOPs per token (default; at sequence length 128, as ``flops_per_token`` counts them:
  2 per weight of the unit's matrices, plus a head's ``4 x span x head_size`` attention terms) or
  prunable weights (``budget="weights"``). ``sparsity`` is the fraction of that quantity removed.
- Importance: the criteria accepted here (``fisher``, ``fisher_batch``, ``taylor``,
  ``loss_increment``) all estimate the calibration-loss increase of removing the unit, in the
  loss's own units, so a head's and a neuron's scores are comparable as they are and are summed
  without any per-kind normalisation (``l1`` is not comparable across kinds and not accepted).
- Search: for every number ``h`` of heads kept, the ``h`` best heads, then the remaining budget
  filled with the best neurons; the ``h`` with the largest total wins. With equal unit costs
  within a kind (every BERT-layout model) this is the exact optimum; ``round_to=r`` keeps a
  multiple of ``r`` neurons in every layer (blocks of a layer's ``r`` next-best neurons), so the
  pruned FFN widths stay kernel-friendly.
"""

from __future__ import annotations

import torch

from ticketbert.models.compute import FLOPS_SEQ_LEN, count_prunable, flops_per_token
from ticketbert.models.families import Encoder, require_encoder
from ticketbert.pruning.criteria import get_criterion
from ticketbert.pruning.methods.base import JointPlan, JointScores, Method
from ticketbert.pruning.methods.description import describe
from ticketbert.pruning.units import UNIT_KINDS

KINDS = describe("heads+ffn").units
BUDGETS = ("flops", "weights")


def unit_flops(encoder: Encoder, kind: str, seq_len: int = FLOPS_SEQ_LEN) -> list[torch.Tensor]:
    """FLOPs per token each unit of ``kind`` costs, per layer (matching ``flops_per_token``)."""
    sizes = UNIT_KINDS[kind].weight_counts(encoder)
    if kind == "ffn":
        return [2.0 * s for s in sizes]
    family = encoder.family
    return [2.0 * s + 4.0 * family.attention_span(layer, seq_len) * family.head_size(layer) if s.numel() else s
            for s, layer in zip(sizes, encoder.layers())]


def _blocks(values: list[torch.Tensor], costs: list[torch.Tensor], size: int) -> list[tuple[float, float, int, int]]:
    """(importance, cost, layer, units) of every block: each layer's units, best first, in
    groups of ``size``; best block first over all layers."""
    blocks = []
    for layer, (v, c) in enumerate(zip(values, costs)):
        order = torch.argsort(v.double(), descending=True, stable=True)
        for start in range(0, v.numel(), size):
            chosen = order[start: start + size]
            blocks.append((float(v.double()[chosen].sum()), float(c.double()[chosen].sum()), layer, len(chosen)))
    return sorted(blocks, key=lambda b: -b[0])


def search(values: dict[str, list[torch.Tensor]], costs: dict[str, list[torch.Tensor]], budget: float,
           round_to: int = 1) -> dict[str, list[int]]:
    """Units kept per layer of each kind: the best heads x best-neurons fill within ``budget``."""
    heads = _blocks(values["heads"], costs["heads"], 1)
    neurons = _blocks(values["ffn"], costs["ffn"], round_to)
    head_cost = torch.tensor([0.0] + [b[1] for b in heads], dtype=torch.float64).cumsum(0)
    head_gain = torch.tensor([0.0] + [b[0] for b in heads], dtype=torch.float64).cumsum(0)
    neuron_cost = torch.tensor([0.0] + [b[1] for b in neurons], dtype=torch.float64).cumsum(0)
    neuron_gain = torch.tensor([0.0] + [b[0] for b in neurons], dtype=torch.float64).cumsum(0)
    slack = 1e-9 * max(float(head_cost[-1] + neuron_cost[-1]), 1.0)
    best = (-float("inf"), 0, 0)
    for h in range(len(heads) + 1):
        left = budget - float(head_cost[h]) + slack
        if left < 0:
            break
        n = int(torch.searchsorted(neuron_cost, torch.tensor([left], dtype=torch.float64), right=True)) - 1
        total = float(head_gain[h] + neuron_gain[n])
        if total > best[0]:
            best = (total, h, n)
    _, h, n = best
    kept = {kind: [0] * len(values[kind]) for kind in KINDS}
    for blocks, count, kind in ((heads, h, "heads"), (neurons, n, "ffn")):
        for _, _, layer, units in blocks[:count]:
            kept[kind][layer] += units
    return kept


class HeadsAndFfn(Method):
    """One budget over attention heads and FFN neurons together (see the module docstring)."""

    name = "heads+ffn"

    def limit(self, model) -> float:
        require_encoder(model, f"method {self.name!r}")
        return 1.0

    def score(self, model, criterion, calibration, *, include=(), exclude=()) -> JointScores:
        encoder = require_encoder(model, f"method {self.name!r}")
        chosen = get_criterion(criterion)
        values = {kind: chosen(model, encoder, UNIT_KINDS[kind], calibration) for kind in KINDS}
        flops = sum(chosen.flops(v, calibration, model) for v in values.values())
        return self.scores_from(model, criterion, values, flops)

    def scores_from(self, model, criterion, values, flops=0.0) -> JointScores:
        encoder = require_encoder(model, f"method {self.name!r}")
        return JointScores(self.name, criterion, count_prunable(model, nonzero=False), flops, values,
                           {k: UNIT_KINDS[k].weight_counts(encoder) for k in KINDS},
                           {k: unit_flops(encoder, k) for k in KINDS}, flops_per_token(model, FLOPS_SEQ_LEN))

    def plan(self, scores: JointScores, sparsity: float, scope: str, exclude=None, *, budget: str | None = None,
             round_to: int | None = None) -> JointPlan:
        budget = "flops" if budget is None else budget
        round_to = 1 if round_to is None else round_to
        if budget not in BUDGETS:
            raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
        if round_to < 1:
            raise ValueError(f"round_to must be >= 1, got {round_to}")
        self.description.check_scope(scope)
        if exclude:
            raise ValueError(f"method {self.name!r} plans in one shot (no iterative steps or excluded units)")
        costs = scores.unit_flops if budget == "flops" else scores.unit_sizes
        total = sum(float(c.sum()) for kind in KINDS for c in costs[kind])
        kept = search(scores.values, costs, (1.0 - sparsity) * total, round_to)
        removed = {}
        for kind in KINDS:
            per_layer = {}
            for layer, (values, keep) in enumerate(zip(scores.values[kind], kept[kind])):
                order = torch.argsort(values.double(), descending=True, stable=True).tolist()
                if order[keep:]:
                    per_layer[layer] = sorted(order[keep:])
            removed[kind] = per_layer
        return JointPlan(self.name, scores.criterion, sparsity, removed)

    def apply(self, model, plan) -> list:
        encoder = require_encoder(model, f"method {self.name!r}")
        return [cut for kind in KINDS for cut in UNIT_KINDS[kind].remove(encoder, plan.removed_by_kind.get(kind, {}))]


METHOD = HeadsAndFfn()
