"""Early-bird tickets (You et al. 2020; EarlyBERT, Chen et al. 2021): during a short training
phase, draw the pruning mask every few steps; once consecutive masks stop changing (mask
distance below ``epsilon`` over a ``window`` of draws) the ticket is found, and training
resumes on the pruned model.

``EarlyBirdPruner`` needs nothing from a training loop but to be stepped::

    pruner = EarlyBirdPruner("heads", sparsity=0.3, criterion="fisher", model=model)
    for batch in loader:
        ...; loss.backward(); optimizer.step()
        if pruner.step(model):                           # True once the ticket is found
            pruner.prune(model, optimizer=optimizer)     # smaller model, same optimizer: go on

Where the masks come from (``draws``): gradient criteria (``taylor``, ``fisher``,
``fisher_batch``) sum the gate gradients of the training step's own backward by default
(``"training"``: no extra pass, see ``ticketbert.pruning.training_draws``); ``"calibration"``
scores fixed calibration batches at every draw (a forward and a backward over them, counted in
``scoring_flops``); ``loss_increment`` always reads calibration batches, ``l1`` only the weights.
``wanda`` (criterion ``activation``) sums its input-feature norms over the training step's own
forward passes by default (``ticketbert.pruning.training_norms``), or over one forward pass of
the calibration batches per draw; its mask is |W| x norm per row (or ``scope``/``pattern``).
``sparsegpt`` has no early-bird draw: see its method description.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ticketbert.pruning.api import PruningReport, apply, check_sparsity, method_limit, plan, resolve_criterion
from ticketbert.pruning.calibration import LossFn, as_calibration
from ticketbert.pruning.criteria import get_criterion
from ticketbert.pruning.methods import describe, get_method
from ticketbert.pruning.methods.description import TRAINING_CRITERIA
from ticketbert.pruning.methods.base import MaskPlan, Plan, Scores, UnitPlan
from ticketbert.pruning.nm_pattern import parse_pattern, resolve_sparsity
from ticketbert.pruning.training_draws import TrainingGates
from ticketbert.pruning.training_norms import TrainingNorms

DRAWS = ("auto", "training", "calibration")


def plan_distance(a: Plan, b: Plan) -> float:
    """Normalised Hamming distance of two plans: the fraction of units (or weights) whose
    pruned/kept status differs, relative to the number pruned."""
    if isinstance(a, MaskPlan):
        changed = sum(int((a.masks[k] != b.masks[k]).sum()) for k in a.masks)
        pruned = max(sum(int((~m).sum()) for m in a.masks.values()), 1)
        return changed / (2 * pruned)
    units_a = {(i, u) for i, us in a.removed.items() for u in us}
    units_b = {(i, u) for i, us in b.removed.items() for u in us}
    return len(units_a ^ units_b) / (2 * max(len(units_a), len(units_b), 1))


def resolve_draws(criterion: str, draws: str) -> str:
    """What the masks of ``criterion`` are drawn from: "training" (the training backward's gate
    gradients, or its forward's input norms for ``activation``), "calibration" (extra passes over
    calibration batches) or "weights" (``l1``). ``draws="auto"``: training for gradient criteria
    and ``activation``, calibration for ``loss_increment``."""
    if draws not in DRAWS:
        raise ValueError(f"draws must be one of {', '.join(DRAWS)}, got {draws!r}")
    chosen = get_criterion(criterion)
    from_training = criterion in TRAINING_CRITERIA
    if draws == "training" and not from_training:
        raise ValueError(f"draws='training' sums gate gradients or input norms of the training steps: criterion must "
                         f"be {', '.join(TRAINING_CRITERIA)}, got {criterion!r}")
    if not chosen.needs_data:
        return "weights"
    return ("training" if from_training else "calibration") if draws == "auto" else draws


class EarlyBirdPruner:
    """Finds an early-bird ticket while a model trains, in any training loop.

    Every ``interval`` steps the mask for ``sparsity`` is drawn under ``criterion``; the ticket
    is found when the last ``window`` distances between consecutive masks are all below
    ``epsilon`` (You et al. 2020: window 5, epsilon 0.1), or (``converged`` False) after
    ``max_steps`` steps. ``draws`` (see ``resolve_draws``): with ``"training"`` the model's units
    are gated from ``model=`` or ``attach`` on (else from the first ``step``) until the ticket is
    found, ``prune``, ``detach`` or the end of a ``with pruner:`` block, and each draw reads the
    batches trained on since the previous one. Calibration draws read ``data`` (batches, kept as a
    fixed list) with ``loss_fn`` (see ``ticketbert.score``); training draws fall back on ``data``
    when no training backward reached the gates yet. Arguments are checked here; with ``model``
    also the sparsity against the method's maximum.
    """

    def __init__(self, method: str, sparsity: float | None, *, criterion: str | None = None, scope: str | None = None,
                 interval: int = 20, window: int = 5, epsilon: float = 0.1, max_steps: int | None = None,
                 draws: str = "auto", data=None, loss_fn: LossFn | None = None, model: nn.Module | None = None,
                 pattern: str | None = None):
        if interval < 1 or window < 1 or not 0 < epsilon <= 1:
            raise ValueError(f"interval and window must be >= 1 and epsilon in (0, 1]; got interval {interval}, "
                             f"window {window}, epsilon {epsilon}")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {max_steps}")
        described = describe(method)
        described.check_mode("early_bird")
        described.check_options(pattern=pattern)
        scope = scope or described.default_scope
        described.check_scope(scope)
        sparsity = resolve_sparsity(sparsity, parse_pattern(pattern))
        check_sparsity(sparsity)
        self.criterion = resolve_criterion(method, criterion)
        self.draws = resolve_draws(self.criterion, draws)
        if self.draws == "calibration" and data is None:
            if self.criterion == "activation":
                raise ValueError(f"method {method!r} with draws='calibration' reads calibration inputs: pass data= "
                                 f"(batches), or draw from training (draws='auto')")
            raise ValueError(f"method {method!r} with criterion {self.criterion!r} draws masks from a loss: pass data= "
                             f"(batches) and, unless model(**batch).loss works, loss_fn=; or use criterion='l1'")
        self.method, self.sparsity, self.scope, self.pattern = method, sparsity, scope, pattern
        self.gates: TrainingGates | TrainingNorms | None = None  # training draws: the hooks on the model while it trains
        self.interval, self.window, self.epsilon, self.max_steps = interval, window, epsilon, max_steps
        self.data = as_calibration(data, loss_fn) if data is not None else None
        self.steps = 0
        self.distances: list[float] = []
        self.distance_steps: list[int] = []  # the step of each distance
        self.plan: Plan | None = None
        self.found_at: int | None = None
        self.converged = False
        self.scoring_flops = 0.0  # model FLOPs the mask draws cost (calibration passes; 0 for l1 and training)
        if model is not None:
            self.check_model(model)
            self.attach(model)

    def check_model(self, model: nn.Module) -> None:
        """Fail (one line) if the method cannot reach the sparsity on ``model``."""
        limit = method_limit(model, self.method)
        if self.sparsity > limit + 1e-9:
            raise ValueError(f"method {self.method!r} can remove at most {limit:.1%} of this model's prunable "
                             f"weights, asked for {self.sparsity:.1%}")

    @property
    def found(self) -> bool:
        return self.found_at is not None

    def attach(self, model: nn.Module) -> None:
        """Training draws: gate ``model``'s units so that its training backward feeds the draws
        (a no-op if already on ``model``, for other draws, or once the ticket is found). Gates on
        another model come off it first; sums collected since the last draw carry over when the
        unit counts match (e.g. a second ``trainer.train()`` of the same model)."""
        if self.draws != "training" or self.found_at is not None:
            return
        previous = self.gates
        if previous is not None and previous.attached and previous.model is model:
            return
        if previous is not None:
            previous.close()
        self.gates = (TrainingNorms(model) if self.criterion == "activation" else
                      TrainingGates(model, get_method(self.method).unit, get_criterion(self.criterion)))
        if previous is not None and [t.shape for t in previous.totals] == [t.shape for t in self.gates.totals]:
            self.gates.totals, self.gates.examples = previous.totals, previous.examples

    def detach(self) -> None:
        """Remove the training gates from the model (what they collected stays for the next draw,
        and for the next ``attach`` to the same units)."""
        if self.gates is not None:
            self.gates.close()

    def __enter__(self) -> "EarlyBirdPruner":
        return self

    def __exit__(self, *exc) -> None:
        self.detach()

    def scores(self, model: nn.Module) -> Scores:
        """The next draw's scores: the training backward's gate gradients since the last draw (no
        extra pass), else the calibration data's (its passes added to ``scoring_flops``)."""
        if self.gates is not None and self.gates.examples:
            return get_method(self.method).scores_from(model, self.criterion, self.gates.take())
        if self.draws == "training" and self.data is None:
            raise ValueError("no training step reached the pruner's hooks since the last draw and no data= to draw "
                             "from: pass model= (or call attach) before training and step the pruner after each "
                             "optimizer step")
        data = self.data if get_criterion(self.criterion).needs_data else None
        scores = get_method(self.method).draw_scores(model, self.criterion, data)
        self.scoring_flops += scores.flops
        return scores

    def draw(self, model: nn.Module) -> Plan:
        """The mask the model's weights (or the gradients gathered since the last draw) give."""
        return plan(self.scores(model), self.sparsity, self.scope, pattern=self.pattern)

    def step(self, model: nn.Module) -> bool:
        """Count one optimizer step (call it after the step); training draws fold the step's gate
        gradients in; draw and compare masks every ``interval`` steps. True once the ticket is found."""
        self.steps += 1
        if self.found_at is not None:
            return True
        try:
            if self.draws == "training":
                self.attach(model)
                self.gates.collect()
            if self.steps % self.interval == 0:
                self._compare(self.draw(model))
        except BaseException:
            self.detach()
            raise
        if self.found_at is not None:
            self.detach()
        return self.found_at is not None

    def _compare(self, current: Plan) -> None:
        """Record ``current``'s distance to the previous mask; the ticket is found when the last
        ``window`` distances are below ``epsilon`` (or at ``max_steps``)."""
        if self.plan is not None:
            self.distances.append(plan_distance(self.plan, current))
            self.distance_steps.append(self.steps)
        self.plan = current
        recent = self.distances[-self.window:]
        if len(recent) == self.window and max(recent) < self.epsilon:
            self.found_at, self.converged = self.steps, True
        elif self.max_steps is not None and self.steps >= self.max_steps:
            self.found_at = self.steps

    def prune(self, model: nn.Module, *, optimizer: torch.optim.Optimizer | None = None) -> PruningReport:
        """Apply the ticket (drawn now if none was drawn yet) to ``model``, the training gates
        removed first; with ``optimizer``, its state is cut alike so training goes on without a restart."""
        try:
            if self.plan is None:
                self.plan = self.draw(model)
        finally:
            self.detach()
        return apply(model, self.plan, optimizer=optimizer)

    def state_dict(self) -> dict[str, Any]:
        """Steps, distances, the last mask and the ticket; not the training draws' sums since the
        last draw (after a resume the next draw reads the steps trained since)."""
        state: dict[str, Any] = {"steps": self.steps, "distances": list(self.distances),
                                 "distance_steps": list(self.distance_steps),
                                 "found_at": self.found_at, "converged": self.converged,
                                 "scoring_flops": self.scoring_flops}
        if isinstance(self.plan, MaskPlan):
            state["masks"] = self.plan.masks
        elif isinstance(self.plan, UnitPlan):
            state["removed"] = {str(k): list(v) for k, v in self.plan.removed.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.distances = state["steps"], list(state["distances"])
        self.distance_steps = list(state.get("distance_steps", []))
        self.found_at, self.converged = state["found_at"], state["converged"]
        self.scoring_flops = state["scoring_flops"]
        if state.get("masks"):
            self.plan = MaskPlan(self.method, self.criterion, self.sparsity,
                                 {k: torch.as_tensor(v) for k, v in state["masks"].items()})
        elif "removed" in state:
            self.plan = UnitPlan(self.method, self.criterion, self.sparsity,
                                 {int(k): list(v) for k, v in state["removed"].items()})
