"""``prune(model, method, sparsity)`` in three steps: score, plan, apply.

Sparsity is one thing everywhere: the fraction of the encoder's prunable weights (Q, K, V,
attention output and both FFN matrices of every layer) that is removed. Embeddings,
LayerNorms, biases, the pooler and task heads are not prunable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ticketbert.models.compute import count_parameters, count_prunable, flops_per_token
from ticketbert.pruning.criteria import CRITERIA, NEEDS_DATA, Calibration, make_calibration, normalize_per_layer
from ticketbert.pruning.masks import attach_masks, magnitude_scores, plan_masks
from ticketbert.pruning.units import remove_units, unit_gates, unit_weight_counts

METHODS = ("magnitude", "heads", "ffn", "layers")
DEFAULT_CRITERION = {"magnitude": "l1", "heads": "taylor", "ffn": "taylor", "layers": "loss_increment"}
FLOPS_SEQ_LEN = 128


@dataclass
class PruningReport:
    """What a pruning step did and what it bought."""

    method: str
    criterion: str
    target_sparsity: float
    achieved_sparsity: float
    masks: dict[str, torch.Tensor] | None = None  # unstructured: param name -> keep-mask
    removed: dict[int, list[int]] = field(default_factory=dict)  # structured: layer -> unit indices
    params_before: int = 0
    params_after: int = 0
    prunable_before: int = 0
    prunable_after: int = 0
    flops_per_token_before: float = 0.0
    flops_per_token_after: float = 0.0

    @property
    def flops_speedup(self) -> float:
        return self.flops_per_token_before / max(self.flops_per_token_after, 1.0)

    def metrics(self) -> dict[str, float]:
        """The report as tracked metrics."""
        return {"achieved_sparsity": self.achieved_sparsity, "params": self.params_after,
                "prunable_params": self.prunable_after, "flops_per_token": self.flops_per_token_after,
                "flops_speedup": self.flops_speedup}


@dataclass
class Scores:
    """Importance of every unit under one criterion; computed once, planned at many sparsities."""

    method: str
    criterion: str
    values: dict[str, torch.Tensor] | list[torch.Tensor]  # magnitude: per weight; else per layer
    unit_sizes: list[torch.Tensor] = field(default_factory=list)  # structured: weights per unit
    total: int = 0  # prunable weights of the scored model
    flops: float = 0.0  # model FLOPs spent scoring (forward passes, and backward for taylor)


@dataclass
class Plan:
    method: str
    criterion: str
    sparsity: float
    masks: dict[str, torch.Tensor] | None = None
    removed: dict[int, list[int]] = field(default_factory=dict)


def encoder_of(model: nn.Module) -> nn.Module:
    """The BERT-family encoder inside ``model`` (a TicketBertModel) or ``model`` itself."""
    return model.encoder if hasattr(model, "heads") else model


def _check(method: str, sparsity: float | None = None) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; known: {METHODS}")
    if sparsity is not None and not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")


def _reachable(method: str, unit_sizes: list[torch.Tensor], total: int) -> float:
    if method == "magnitude":
        return 1.0
    sizes = [float(s.sum()) for s in unit_sizes]
    removable = sum(sizes) - (max(sizes) if method == "layers" else 0.0)
    return removable / total


def max_sparsity(scores: Scores) -> float:
    """The largest sparsity a method can reach: every head (about a third of a BERT layer),
    every FFN neuron (two thirds), or all layers but one."""
    return _reachable(scores.method, scores.unit_sizes, scores.total)


def method_limit(model: nn.Module, method: str) -> float:
    """``max_sparsity`` of ``method`` on ``model``, without scoring anything."""
    _check(method)
    if method == "magnitude":
        return 1.0
    encoder = encoder_of(model)
    return _reachable(method, unit_weight_counts(encoder, method), count_prunable(encoder, nonzero=False))


def score(model: nn.Module, method: str, criterion: str | None = None, data=None, *,
          normalize: bool = False, calibration_examples: int = 256, pad_id: int = 0,
          include: Sequence[str] = ()) -> Scores:
    """Score every unit of ``method`` under ``criterion`` (default: the method's usual one).

    ``data`` (a Calibration or a ``{task: TaskData}`` dict) is required by ``taylor`` and
    ``loss_increment``, which also need a model with task heads. ``include`` (magnitude only)
    names further encoder modules whose weights become prunable, e.g. ``embeddings.word_embeddings``.
    """
    _check(method)
    criterion = criterion or DEFAULT_CRITERION[method]
    encoder = encoder_of(model)
    total = count_prunable(encoder, nonzero=False)
    if method == "magnitude":
        if criterion != "l1":
            raise ValueError(f"method 'magnitude' ranks weights by 'l1' only, got criterion {criterion!r}")
        values = magnitude_scores(encoder, include)
        return Scores(method, criterion, values, total=sum(v.numel() for v in values.values()))
    if include:
        raise ValueError(f"include applies to method 'magnitude' only, not {method!r}")
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; known: {sorted(CRITERIA)}")
    calibration = None
    if criterion in NEEDS_DATA:
        if data is None:
            raise ValueError(f"criterion {criterion!r} measures the training loss: pass data= "
                             "(a Calibration or a dict of TaskData)")
        if not hasattr(model, "heads"):
            raise ValueError(f"criterion {criterion!r} needs a model with task heads (a TicketBertModel)")
        calibration = data if isinstance(data, Calibration) else make_calibration(
            data, calibration_examples, pad_id=pad_id)
    values = CRITERIA[criterion](model, method, calibration)
    if normalize:
        values = normalize_per_layer(values)
    passes = {"l1": 0, "taylor": 3, "loss_increment": 1 + sum(v.numel() for v in values)}[criterion]
    flops = passes * calibration.tokens * flops_per_token(encoder) if calibration else 0.0
    return Scores(method, criterion, values, unit_weight_counts(encoder, method), total, flops)


def plan(scores: Scores, sparsity: float, scope: str = "global",
         exclude: dict[int, list[int]] | None = None) -> Plan:
    """Which units (or weights) go to reach ``sparsity``: the lowest-scored first, over the
    whole encoder (``global``) or the same share in every layer (``layer``). Units in
    ``exclude`` are already gone and count towards the target."""
    _check(scores.method, sparsity)
    if scores.method == "magnitude":
        return Plan(scores.method, scores.criterion, sparsity, masks=plan_masks(scores.values, sparsity, scope))
    limit = max_sparsity(scores)
    if sparsity > limit + 1e-9:
        raise ValueError(f"method {scores.method!r} can remove at most {limit:.1%} of the prunable encoder "
                         f"weights, asked for {sparsity:.1%}")
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    if scope == "layer" and scores.method == "layers":
        raise ValueError("method 'layers' ranks whole layers: use scope 'global'")
    removed = {i: list(units) for i, units in (exclude or {}).items()}
    gone = {(i, u) for i, units in removed.items() for u in units}
    if scope == "layer":
        share = sparsity / limit
        for i, values in enumerate(scores.values):
            order = [u for u in torch.argsort(values, stable=True).tolist() if (i, u) not in gone]
            want = round(share * values.numel()) - len(removed.get(i, []))
            removed.setdefault(i, []).extend(order[:max(want, 0)])
    else:
        target = sparsity * scores.total
        done = sum(float(scores.unit_sizes[i][u]) for i, u in gone)
        flat = [(float(v), i, u) for i, values in enumerate(scores.values)
                for u, v in enumerate(values.tolist()) if (i, u) not in gone]
        keep_one_layer = scores.method == "layers"
        for _, i, u in sorted(flat):
            size = float(scores.unit_sizes[i][u])
            if done + size / 2 > target or (keep_one_layer and len(removed) == len(scores.values) - 1):
                break
            removed.setdefault(i, []).append(u)
            done += size
    removed = {i: sorted(units) for i, units in removed.items() if units}
    return Plan(scores.method, scores.criterion, sparsity, removed=removed)


def apply(model: nn.Module, prune_plan: Plan) -> PruningReport:
    """Carry out ``prune_plan`` on ``model`` in place: attach masks or remove units physically."""
    encoder = encoder_of(model)
    before = (count_parameters(encoder), count_prunable(encoder, nonzero=False), flops_per_token(encoder, FLOPS_SEQ_LEN))
    if prune_plan.masks is not None:
        attach_masks(encoder, prune_plan.masks)
        kept = sum(int(m.sum()) for m in prune_plan.masks.values())
        achieved = 1.0 - kept / sum(m.numel() for m in prune_plan.masks.values())
        prunable_after = count_prunable(encoder, nonzero=True)
    else:
        remove_units(encoder, prune_plan.method, prune_plan.removed)
        prunable_after = count_prunable(encoder, nonzero=False)
        achieved = 1.0 - prunable_after / before[1]
    return PruningReport(
        prune_plan.method, prune_plan.criterion, prune_plan.sparsity, achieved, prune_plan.masks, prune_plan.removed,
        params_before=before[0], params_after=count_parameters(encoder), prunable_before=before[1],
        prunable_after=prunable_after, flops_per_token_before=before[2],
        flops_per_token_after=flops_per_token(encoder, FLOPS_SEQ_LEN))


def prune(model: nn.Module, method: str, sparsity: float, *, criterion: str | None = None,
          scope: str = "global", data=None, steps: int = 1, normalize: bool = False,
          pad_id: int = 0, include: Sequence[str] = ()) -> PruningReport:
    """Prune ``model`` in place to ``sparsity`` with ``method`` and return a PruningReport.

    ``method``: ``magnitude`` (unstructured L1, ``scope`` global or per matrix), ``heads``,
    ``ffn`` or ``layers`` (physically removed). ``steps > 1`` re-scores structured units
    between steps (iterative pruning), the removed ones gated off meanwhile. ``include`` makes
    further encoder modules' weights prunable by magnitude (embeddings, pooler, LayerNorm).
    """
    _check(method, sparsity)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if method == "magnitude" or steps == 1:
        scores = score(model, method, criterion, data, normalize=normalize, pad_id=pad_id, include=include)
        return apply(model, plan(scores, sparsity, scope))
    removed: dict[int, list[int]] = {}
    for step in range(1, steps + 1):
        with unit_gates(encoder_of(model), method) as gates:
            with torch.no_grad():
                for i, units in removed.items():
                    gates[i][units] = 0.0
            scores = score(model, method, criterion, data, normalize=normalize, pad_id=pad_id)
        removed = plan(scores, sparsity * step / steps, scope, exclude=removed).removed
    return apply(model, Plan(method, scores.criterion, sparsity, removed=removed))

