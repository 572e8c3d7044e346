"""``prune(model, method, sparsity)`` in three steps: score, plan, apply.

``model`` is anything holding a supported encoder (a Hugging Face base or task model, a
TicketBertModel, a user's wrapper) or, for ``magnitude``, any ``nn.Module``. Sparsity has one
definition per model kind: in a model with an encoder, the fraction of the encoder layers'
prunable weights (attention Q/K/V/output and FFN matrices; embeddings, LayerNorms, biases,
pooler and task heads are not prunable) that is removed; in any other module, the fraction of
its ``nn.Linear`` weights (``include`` / ``exclude`` patterns change the set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ticketbert.models.compute import FLOPS_SEQ_LEN, count_parameters, count_prunable, flops_per_token
from ticketbert.models.families import require_encoder
from ticketbert.models.structure import Cut
from ticketbert.pruning.calibration import Calibration, LossFn, as_calibration
from ticketbert.pruning.criteria import get_criterion, normalize_per_layer
from ticketbert.pruning.methods import describe, get_method
from ticketbert.pruning.methods.base import JointPlan, MaskPlan, Plan, Scores, UnitPlan
from ticketbert.pruning.optim import slice_optimizer
from ticketbert.pruning.repair import REPAIRS, RepairResult, repair_lstsq


@dataclass
class PruningReport:
    """What a pruning step did and what it bought."""

    method: str
    criterion: str
    target_sparsity: float
    achieved_sparsity: float
    plan: Plan | None = field(default=None, repr=False)  # what was removed
    params_before: int = 0
    params_after: int = 0
    prunable_before: int = 0
    prunable_after: int = 0
    flops_per_token_before: float = 0.0
    flops_per_token_after: float = 0.0
    cuts: list[Cut] = field(default_factory=list, repr=False)  # parameters cut in place
    repair: RepairResult | None = field(default=None, repr=False)  # repair="lstsq": scales and errors

    @property
    def masks(self) -> dict[str, torch.Tensor] | None:
        """Unstructured: parameter name -> keep-mask (None for structured plans)."""
        return self.plan.masks if isinstance(self.plan, MaskPlan) else None

    @property
    def removed(self) -> dict[int, list[int]]:
        """One unit kind: layer -> removed unit indices."""
        return self.plan.removed if isinstance(self.plan, UnitPlan) else {}

    @property
    def removed_by_kind(self) -> dict[str, dict[int, list[int]]]:
        """Several unit kinds: kind -> layer -> removed unit indices."""
        return self.plan.removed_by_kind if isinstance(self.plan, JointPlan) else {}

    @property
    def flops_speedup(self) -> float:
        return self.flops_per_token_before / max(self.flops_per_token_after, 1.0)

    @property
    def flops_reduction(self) -> float:
        """Fraction of the encoder layers' FLOPs per token (at sequence length 128) removed."""
        return 1.0 - self.flops_per_token_after / max(self.flops_per_token_before, 1.0)

    def metrics(self) -> dict[str, float]:
        """The report as tracked metrics."""
        metrics = {"achieved_sparsity": self.achieved_sparsity, "params": self.params_after,
                   "prunable_params": self.prunable_after, "flops_per_token": self.flops_per_token_after,
                   "flops_speedup": self.flops_speedup, "flops_reduction": self.flops_reduction}
        if self.repair is not None:
            metrics.update({"repair_seconds": self.repair.seconds,
                            "repair_unrepaired_layers": float(len(self.repair.unrepaired))})
        return metrics


def check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")


def resolve_criterion(method: str, criterion: str | None) -> str:
    """``criterion`` checked against ``method`` (default: the method's usual one)."""
    if criterion is not None:
        get_criterion(criterion)  # unknown names fail here, naming the known ones
    return describe(method).check_criterion(criterion)


def needs_data(method: str, criterion: str | None) -> bool:
    """Whether ``method`` under ``criterion`` (default: its usual one) reads calibration data."""
    return get_criterion(resolve_criterion(method, criterion)).needs_data


def max_sparsity(scores: Scores) -> float:
    """The largest sparsity a method's scores can reach: every head (about a third of a BERT
    layer's weights), every FFN neuron (two thirds), or all layers but one."""
    return get_method(scores.method).max_sparsity(scores)


def method_limit(model: nn.Module, method: str) -> float:
    """``max_sparsity`` of ``method`` on ``model``, without scoring anything."""
    return get_method(method).limit(model)


def score(model: nn.Module, method: str, criterion: str | None = None, data: Any = None, *,
          loss_fn: LossFn | None = None, normalize: bool = False, calibration_examples: int = 256,
          pad_id: int = 0, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Scores:
    """Score every unit of ``method`` under ``criterion`` (default: the method's usual one).

    Gradient and loss criteria (``taylor``, ``loss_increment``) read ``data``: any iterable of
    batches (a list, a DataLoader) with ``loss_fn(model, batch) -> loss`` (default for Hugging
    Face models called with labels: ``model(**batch).loss``), a ``Calibration``, or ticketbert's
    ``{task: TaskData}``. ``include`` / ``exclude`` (magnitude only): module-name patterns added
    to / removed from the prunable set.
    """
    criterion = resolve_criterion(method, criterion)
    described = describe(method)
    described.check_options(include=(include or exclude) or None, normalize=normalize or None)
    calibration = None
    if get_criterion(criterion).needs_data:
        if data is None:
            raise ValueError(f"method {method!r} with criterion {criterion!r} measures a loss: pass data= (batches) "
                             f"and, unless model(**batch).loss works, loss_fn=; or use criterion='l1' (no data)")
        calibration = as_calibration(data, loss_fn, examples=calibration_examples, pad_id=pad_id)
    scores = described.method().score(model, criterion, calibration, include=include, exclude=exclude)
    if normalize:
        scores.values = normalize_per_layer(scores.values)
    return scores


def plan(scores: Scores, sparsity: float, scope: str = "global",
         exclude: dict[int, list[int]] | None = None, *, budget: str | None = None,
         round_to: int | None = None) -> Plan:
    """Which units (or weights) go to reach ``sparsity``: the lowest-scored first, over the
    whole encoder (``global``) or the same share in every layer (``layer``). Units in
    ``exclude`` are already gone and count towards the target.

    ``heads+ffn`` only: ``budget`` ``"flops"`` (default: ``sparsity`` is the fraction of FLOPs per
    token removed) or ``"weights"`` (the fraction of prunable weights), and ``round_to`` (keep a
    multiple of that many FFN neurons in every layer)."""
    check_sparsity(sparsity)
    described = describe(scores.method)
    described.check_options(budget=budget, round_to=round_to)
    options = {k: v for k, v in (("budget", budget), ("round_to", round_to)) if v is not None}
    return described.method().plan(scores, sparsity, scope, exclude, **options)


def check_repair(method: str, repair: str | None) -> None:
    """``repair`` is None or a known repair that ``method`` takes."""
    if repair is not None and repair not in REPAIRS:
        raise ValueError(f"repair must be one of {', '.join(REPAIRS)} (or None), got {repair!r}")
    describe(method).check_options(repair=repair)


def apply(model: nn.Module, prune_plan: Plan, *, optimizer: torch.optim.Optimizer | None = None,
          repair: str | None = None, data: Any = None, loss_fn: LossFn | None = None,
          damping: float = 1e-3) -> PruningReport:
    """Carry out ``prune_plan`` on ``model`` in place: attach masks or remove units physically.
    With ``optimizer`` (built over the model's parameters; AdamW, SGD, ...), its state is cut
    alike so training continues on the smaller model without a restart.

    ``repair="lstsq"`` (heads, ffn, heads+ffn): before removal, rescale the kept units so each
    pruned layer's output matches the dense model's on ``data`` (calibration batches, run
    through ``loss_fn`` as in ``score``) and fold the scales into the weights
    (``ticketbert.pruning.repair``; ``damping`` regularises each solve towards no repair)."""
    check_repair(prune_plan.method, repair)
    repaired = None
    if repair is not None:
        if data is None:
            raise ValueError(f"repair {repair!r} fits the pruned layers to the dense model's outputs: pass data= "
                             f"(calibration batches)")
        encoder = require_encoder(model, f"repair {repair!r}")
        repaired = repair_lstsq(model, encoder, prune_plan.removals(), as_calibration(data, loss_fn),
                                damping=damping)
    before = (count_parameters(model), count_prunable(model, nonzero=False), flops_per_token(model, FLOPS_SEQ_LEN))
    cuts = get_method(prune_plan.method).apply(model, prune_plan)
    if isinstance(prune_plan, MaskPlan):
        kept = sum(int(m.sum()) for m in prune_plan.masks.values())
        achieved = 1.0 - kept / sum(m.numel() for m in prune_plan.masks.values())
        prunable_after = count_prunable(model, nonzero=True)
    else:
        prunable_after = count_prunable(model, nonzero=False)
        achieved = 1.0 - prunable_after / before[1]
    if optimizer is not None:
        slice_optimizer(optimizer, cuts, model)
    return PruningReport(
        prune_plan.method, prune_plan.criterion, prune_plan.sparsity, achieved, prune_plan, params_before=before[0], params_after=count_parameters(model),
        prunable_before=before[1], prunable_after=prunable_after, flops_per_token_before=before[2],
        flops_per_token_after=flops_per_token(model, FLOPS_SEQ_LEN), cuts=cuts, repair=repaired)


def prune(model: nn.Module, method: str, sparsity: float, *, criterion: str | None = None,
          scope: str = "global", data: Any = None, loss_fn: LossFn | None = None, steps: int = 1,
          normalize: bool = False, pad_id: int = 0, include: Sequence[str] = (), exclude: Sequence[str] = (),
          optimizer: torch.optim.Optimizer | None = None, budget: str | None = None, round_to: int | None = None,
          repair: str | None = None) -> PruningReport:
    """Prune ``model`` in place to ``sparsity`` with ``method`` and return a PruningReport.

    ``method``: ``magnitude`` (unstructured L1 on any module, ``scope`` global or per matrix),
    ``heads``, ``ffn``, ``layers`` or ``heads+ffn`` (one budget over heads and FFN neurons;
    ``budget`` and ``round_to``: see ``plan``), physically removed from the encoder inside
    ``model``. ``data`` / ``loss_fn``: see ``score``. ``steps > 1`` re-scores structured units
    between steps (iterative pruning), the removed ones gated off meanwhile. ``optimizer`` and
    ``repair``: see ``apply``.
    """
    check_sparsity(sparsity)
    described = describe(method)
    check_repair(method, repair)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    described.check_options(steps=steps if steps > 1 else None, normalize=normalize or None)
    kwargs = dict(loss_fn=loss_fn, normalize=normalize, pad_id=pad_id)
    if repair is not None and data is not None:
        data = as_calibration(data, loss_fn, pad_id=pad_id)
    options = dict(budget=budget, round_to=round_to)
    repairing = dict(repair=repair, data=data, loss_fn=loss_fn)
    if steps == 1:
        scores = score(model, method, criterion, data, include=include, exclude=exclude, **kwargs)
        return apply(model, plan(scores, sparsity, scope, **options), optimizer=optimizer, **repairing)
    unit = get_method(method).unit
    encoder = require_encoder(model, f"method {method!r}")
    calibration = as_calibration(data, loss_fn) if data is not None else None
    removed: dict[int, list[int]] = {}
    for step in range(1, steps + 1):
        with unit.gates(encoder) as gates:
            with torch.no_grad():
                for i, units in removed.items():
                    gates[i][units] = 0.0
            scores = score(model, method, criterion, calibration, **kwargs)
        removed = plan(scores, sparsity * step / steps, scope, exclude=removed, **options).removed
    return apply(model, UnitPlan(method, scores.criterion, sparsity, removed), optimizer=optimizer, **repairing)


__all__ = ["Calibration", "Plan", "PruningReport", "Scores", "apply", "max_sparsity", "method_limit",
           "needs_data", "plan", "prune", "score"]
