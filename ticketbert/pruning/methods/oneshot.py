"""Wanda and SparseGPT as pruning methods. They are sequential (``reuses_scores=False``): each
layer is pruned from the inputs the already-pruned model gives it, so nothing can be scored
once and planned at many levels. Scoring only keeps the calibration batches, planning records
the level and options, and applying runs the layer-wise calibration loop on the model it
prunes (``ticketbert.pruning.oneshot``): every level of a sweep is computed afresh."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ticketbert.models.compute import count_prunable
from ticketbert.pruning.calibration import ForwardFn
from ticketbert.pruning.methods.base import MaskPlan, Method, Scores
from ticketbert.pruning.oneshot import SolverOptions, resolve_options
from ticketbert.pruning.oneshot.prune import run_oneshot


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

    def plan(self, scores, sparsity, scope, exclude=None, **options) -> OneShotPlan:
        solver_options = resolve_options(self.name, sparsity, scope=scope, pattern=options.get("pattern"),
                                         **{k: options[k] for k in ("block_size", "damping") if k in options})
        return OneShotPlan(self.name, scores.criterion, solver_options.sparsity, {}, solver_options, scores.batches,
                           scores.forward_fn)

    def apply(self, model, plan: OneShotPlan) -> list:
        result = run_oneshot(model, self.name, plan.options, plan.batches, plan.forward_fn)
        plan.masks.update(result.masks)
        plan.seconds = result.seconds
        return []


WANDA = OneShot("wanda")
SPARSEGPT = OneShot("sparsegpt")
