"""Wanda and SparseGPT as pruning methods. They are sequential (``reuses_scores=False``): each
layer is pruned from the inputs the already-pruned model gives it, so nothing can be scored
once and planned at many levels. Scoring only keeps the calibration batches, planning records
the level and options, and applying runs the layer-wise calibration loop on the model it
prunes (``ticketbert.pruning.oneshot``): every level of a sweep is computed afresh.

Wanda also takes input norms gathered elsewhere (``scores_from``: an early-bird draw's or an IMP
round's training forward passes, ``ticketbert.pruning.training_norms``; ``draw_scores``: one pass
over calibration batches): its scores are then per-weight values, planned and applied as masks
like magnitude's, at any level."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ticketbert.models.compute import FLOPS_SEQ_LEN, count_prunable, effective_weight, flops_per_token, prunable_linears
from ticketbert.pruning.calibration import ForwardFn
from ticketbert.pruning.masks import attach_masks
from ticketbert.pruning.methods.base import MaskPlan, Method, Scores, WeightScores
from ticketbert.pruning.methods.magnitude import plan_weight_masks
from ticketbert.pruning.oneshot import SolverOptions, resolve_options
from ticketbert.pruning.oneshot.loop import collect_stats, default_forward, on_device
from ticketbert.pruning.oneshot.prune import run_oneshot
from ticketbert.pruning.oneshot.solvers import get_solver, wanda_scores


@dataclass
class CalibrationScores(Scores):
    """A sequential method's scores: none yet, only the calibration batches its apply step runs."""

    batches: list[Any] = field(default_factory=list)
    forward_fn: ForwardFn | None = None


@dataclass
class OneShotPlan(MaskPlan):
    """A level and its options; ``masks`` (empty until applied) and the seconds the layer-wise
    loop took are filled in by ``apply`` on the model it prunes."""

    options: SolverOptions | None = None
    batches: list[Any] = field(default_factory=list, repr=False)
    forward_fn: ForwardFn | None = None
    seconds: float = 0.0


class OneShot(Method):
    """A method of ``ticketbert.pruning.oneshot.solvers`` (wanda, sparsegpt) behind score, plan, apply."""

    def __init__(self, name: str):
        self.name = name

    def limit(self, model) -> float:
        return 1.0

    def score(self, model, criterion, calibration, *, include=(), exclude=()) -> CalibrationScores:
        return CalibrationScores(self.name, criterion, count_prunable(model, nonzero=False), 0.0,
                                 list(calibration.batches), calibration.forward_fn)

    def scores_from(self, model, criterion, values: dict[str, torch.Tensor], flops=0.0) -> WeightScores:
        """Wanda's per-weight scores |W_ij| x ``values[<name>.weight][j]`` (input-feature norms)."""
        if self.name != "wanda":
            raise ValueError(f"method {self.name!r} chooses its mask while it reconstructs each layer: it has no "
                             f"per-weight scores to plan from")
        scores = {f"{name}.weight": wanda_scores(effective_weight(m), values[f"{name}.weight"])
                  for name, m in prunable_linears(model).items()}
        return WeightScores(self.name, criterion, count_prunable(model, nonzero=False), flops, scores)

    def draw_scores(self, model, criterion, calibration) -> WeightScores:
        """Wanda's per-weight scores from one forward pass of ``model`` (as it is) over the calibration batches."""
        batches = on_device(list(calibration.batches), model)
        was_training = model.training
        model.eval()
        try:
            stats, loop = collect_stats(model, prunable_linears(model), batches, calibration.forward_fn or
                                        default_forward, get_solver(self.name))
        finally:
            model.train(was_training)
        norms = {f"{name}.weight": s.norms for name, s in stats.items()}
        return self.scores_from(model, criterion, norms, loop.tokens * flops_per_token(model, FLOPS_SEQ_LEN))

    def plan(self, scores, sparsity, scope, exclude=None, **options) -> MaskPlan:
        if isinstance(scores, WeightScores):  # wanda from norms gathered elsewhere: masks now
            return plan_weight_masks(scores, sparsity, scope, options.get("pattern"))
        solver_options = resolve_options(self.name, sparsity, scope=scope, pattern=options.get("pattern"),
                                         **{k: options[k] for k in ("block_size", "damping") if k in options})
        return OneShotPlan(self.name, scores.criterion, solver_options.sparsity, {}, solver_options, scores.batches,
                           scores.forward_fn)

    def apply(self, model, plan: MaskPlan) -> list:
        if not isinstance(plan, OneShotPlan):  # masks already chosen (from scores_from / draw_scores)
            attach_masks(model, plan.masks)
            return []
        result = run_oneshot(model, self.name, plan.options, plan.batches, plan.forward_fn)
        plan.masks.update(result.masks)
        plan.seconds = result.seconds
        return []


WANDA = OneShot("wanda")
SPARSEGPT = OneShot("sparsegpt")
